"""One LightningModule per method on a shared base (attention_distillation, stylegallery, styleid, ham).
Imports everything below it (backbones, diffusion, regions, matching, gallery, data); methods never import each other."""
