"""The method itself: latent codes and their priors, the losses, the networks and InfoGAN-CR's
contrastive term. Imports only the shared ground (config, errors)."""
