"""The recipe's planner: which systems each stage of egs/voxceleb/v_kd/run.sh trains, embeds and scores, as job
lines (one command each) for a Kaldi-style job command (cmd.sh) to run. Nothing here runs a job."""
