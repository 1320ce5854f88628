"""petsum: Chinese PET/CT findings → impression, with AS-ES trained seq2seq models."""
