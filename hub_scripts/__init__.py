"""Publishing to the Hugging Face Hub: the FAC measurement as a Space, a feature space as a model
repo, an augmented dataset with its card. Each script builds an inspectable folder first (testable
offline) and uploads it with ``huggingface_hub``. (Arrives with the publishing feature; the
measurement's Space files already live in ``fac_metric/fac/``.)
"""
