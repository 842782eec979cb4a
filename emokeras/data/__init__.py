"""Stage 1, preparation.

Corpora on disk (`corpus`), word timings (`alignments`), openSMILE frames and word vectors (`features`) → TFRecord
shards with a manifest (`preparation`, `tfrecords`) → tf.data pipelines per fold and split (`pipelines`). Importing this
package loads no TensorFlow (`tfrecords`, `preparation` and `pipelines` do).
"""
