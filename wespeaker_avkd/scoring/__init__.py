"""Python face of the compiled scorer: embeddings, trials, cosine scores, EER, minDCF, DET, AS-norm."""
