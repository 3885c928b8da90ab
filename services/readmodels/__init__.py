"""The read models' store in Redis: records written by the projector and the rebuild."""
