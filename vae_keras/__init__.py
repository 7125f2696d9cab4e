"""The VAEs of the reports, trained by vae_keras/train.py."""
