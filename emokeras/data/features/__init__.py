"""Feature extraction: openSMILE frames (acoustic) and TF Hub word vectors (lexical)."""
