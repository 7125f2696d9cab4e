"""What each report trained each VAE with: the argument defaults a --preset
sets (the first preset of a model is its default). The networks of each
preset are in the model's own file. No TensorFlow here: train.py reads it
before it checks its input.

Where a report does not say, the value is a documented choice:
- reports 001, 003 and 004 wrote PyTorch code that trains on grey levels
  with a summed binary cross-entropy (--binarize none) and the analytic KL
  (report 003's listing 1), with PyTorch's default Adam learning rate 1e-3;
- report 001 gives no widths or latent size; its 10-epoch loss of 108.8 per
  image is out of reach of a 2-D latent space, so 20 (the PyTorch VAE
  example's) is chosen, with widths 512, 256, 128 and batch 128 (that
  example's);
- report 004 shows its VAE after 1, 10, 20 and 40 epochs: 40 is its default.

rezende2015 is not a report's: it is the VAE whose likelihood on binarized
MNIST the literature reports (89.9 nats, Rezende & Mohamed 2015, table 2),
trained as pythae reproduces it (github clementchadebec/benchmark_VAE,
examples/scripts/reproducibility/vae.py): latent 40, Adam, its MultiStepLR
(x 10^(-1/5) after epochs 200, 350, 500, 750 and 1000). pythae publishes no
training config for this model: batch 100 is its VAMP config's, 1e-3 its
IWAE and IAF configs', 2000 epochs all three's (docs/evaluation.md, "A
published likelihood").
"""

PRESETS = {
    "conv_vae": {
        # report 000, section 4.2: the TensorFlow CVAE tutorial
        "report000": {"latent_dim": 2, "batch_size": 32, "lr": 1e-4, "kl": "mc",
                      "binarize": "static", "epochs": 1000},
    },
    "mlp_vae": {
        # report 004, section 3.1: 2-D latent, BCE + KL, batch 100
        "report004": {"latent_dim": 2, "batch_size": 100, "lr": 1e-3, "kl": "analytic",
                      "binarize": "none", "epochs": 40},
        # report 001, methodology and results (10 epochs)
        "report001": {"latent_dim": 20, "batch_size": 128, "lr": 1e-3, "kl": "analytic",
                      "binarize": "none", "epochs": 10},
        # report 003, tables 3-4, listing 1, algorithm 2: 2-D latent, batch 100, 5 epochs
        "report003": {"latent_dim": 2, "batch_size": 100, "lr": 1e-3, "kl": "analytic",
                      "binarize": "none", "epochs": 5},
        "rezende2015": {"latent_dim": 40, "batch_size": 100, "lr": 1e-3, "kl": "analytic",
                        "binarize": "static", "dataset": "binarized_mnist", "epochs": 2000,
                        "lr_milestones": (200, 350, 500, 750, 1000), "lr_decay": 10 ** (-1 / 5)},
    },
    "cvae": {
        # report 001: its VAE with the label joined to the image and to z
        "report001": {"latent_dim": 20, "batch_size": 128, "lr": 1e-3, "kl": "analytic",
                      "binarize": "none", "epochs": 10},
    },
}
