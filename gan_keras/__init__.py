"""The GANs of the reports, trained by gan_keras/train.py."""
