"""What each report trained each GAN with: the argument defaults a --preset
sets (the first preset of a model is its default). The networks of each
preset are in the model's own file. No TensorFlow here: train.py reads this
before it checks its input.

Where a report does not say, the value is a documented choice:
- report 001's GAN and DCGAN text is CS231n's GAN assignment, word for word;
  its noise size (96), batch (128) and Adam(1e-3, beta_1 0.5) are taken from
  that assignment;
- reports 003 and 004 cite PyTorch GAN code that uses Adam beta_1 = 0.5;
- report 004's DCGAN batch is its other models' 100.
"""

LOSSES = ("bce", "lsgan", "wgan-gp", "hinge")  # the --loss choices, defined in losses.py

PRESETS = {
    "dcgan": {
        # report 000, section 4.1: the TensorFlow DCGAN tutorial
        "report000": {"noise_dim": 100, "batch_size": 256, "lr": 1e-4, "beta_1": 0.9,
                      "epochs": 2000},
        # report 001, appendix figures 3.3-3.4
        "report001": {"noise_dim": 96, "batch_size": 128, "lr": 1e-3, "beta_1": 0.5},
        # report 004, section 4.1: noise 100, Adam 2e-4
        "report004": {"noise_dim": 100, "batch_size": 100, "lr": 2e-4, "beta_1": 0.5},
    },
    "mlp_gan": {
        # report 004, section 3.1: noise 64, batch 100
        "report004": {"noise_dim": 64, "batch_size": 100, "lr": 2e-4, "beta_1": 0.5},
        # report 001, appendix figures 3.1-3.2
        "report001": {"noise_dim": 96, "batch_size": 128, "lr": 1e-3, "beta_1": 0.5},
        # report 003, tables 1-2 and algorithm 1: noise 128, Adam 2e-4, batch 256, 200 epochs
        "report003": {"noise_dim": 128, "batch_size": 256, "lr": 2e-4, "beta_1": 0.5,
                      "epochs": 200},
    },
    "infogan": {
        # Chen et al. 2016, appendix C.1 (report 004 follows it): 62 noise,
        # Adam 2e-4 for D and Q, 1e-3 for G; batch 128 as the authors' code
        "chen2016": {"noise_dim": 62, "batch_size": 128, "lr": 2e-4, "g_lr": 1e-3,
                     "beta_1": 0.5},
    },
    "vaegan": {
        # Larsen et al. 2016 as report 002 trained it: batch 64, learning rate
        # 3e-4 (the paper's, with Adam instead of RMSprop), a 128-d latent
        # space. gamma (not given): over 3 epochs on 4,096 real digits, 1e-3,
        # 1e-2, 0.1, 1 gave test reconstruction errors 0.020, 0.014, 0.012,
        # 0.012 but prior samples' Frechet distances 234, 251, 268, 283 and
        # classifier scores 1.46, 1.17, 1.09, 1.07: 1e-3 keeps the samples best
        "report002": {"noise_dim": 128, "batch_size": 64, "lr": 3e-4, "beta_1": 0.5,
                      "gamma": 1e-3},
    },
}
