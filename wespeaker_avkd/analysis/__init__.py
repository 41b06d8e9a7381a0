"""Result analysis of the KD study: tables like the paper's, corrected-trial counts, PCC, DET and Venn figures."""
