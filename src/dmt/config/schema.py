"""Typed configuration: the single source of truth for every experiment.

Presets (``presets/*.yaml``) and ``key=value`` overrides are translated into these dataclasses
at the edge (:mod:`dmt.config.loader`); nothing below the command line reads YAML or argparse.
Every field is documented here; the defaults are the paper's CIFAR-10 settings where one applies.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Task = Literal["classification", "segmentation"]
# baseline: supervised only; dmt: dynamic mutual training (gamma1 = gamma2 = 0 is curriculum
# labelling); dst/cbst/naive/flip/online: the paper's segmentation ablations.
Method = Literal["baseline", "dmt", "dst", "cbst", "naive", "flip", "online"]


@dataclass
class DataConfig:
    """Which data, where it lives and how it is split."""

    # classification: cifar10 | cifar100 | svhn | stl10 | imagefolder | digits;
    # segmentation: voc | cityscapes | folder | digit_scenes
    name: str = "cifar10"
    root: str | None = None  # dataset folder (read-only to dmt); not needed by the built-in demos
    num_workers: int = 2  # data-loading worker processes (0: load in the main process)
    # classification
    labels_per_class: int = 4  # labelled images per class: 4, 25, 100 or 400 on CIFAR-10
    split_seed: int = 1  # which of the protocol's labelled splits (1..5 on CIFAR-10)
    valtiny_per_class: int = 20  # held-out "valtiny" images per class, taken from the training set
    crop_padding: int = 4  # training augmentation: random crop with this padding ...
    hflip: bool = True  # ... horizontal flips (off for digits, whose mirror images are other glyphs) ...
    randaugment: bool = True  # ... RandAugment (1 op, random magnitude up to 10) ...
    # ... whose operations are torchvision's ("torchvision") or the DMT paper's ("original": 16
    # operations with Cutout 0-40 px among them, translations up to 100 px; data.cutout 0 then) ...
    randaugment_policy: Literal["torchvision", "original"] = "torchvision"
    cutout: int = 16  # ... and a grey Cutout square of this side (0: none)
    # SVHN: append extra_32x32.mat's 531,131 images to the 73,257 of train_32x32.mat, the pool the
    # labelled and unlabelled images are drawn from (USB's and FixMatch's protocol; 1.9 GB in memory)
    svhn_extra: bool = False
    # classification image folders (data.name: imagefolder; dmt.data.class_folders): under data.root,
    # labelled/<class>/... + unlabelled/..., or train/<class>/... alone (benchmark mode: the protocol
    # picks data.labels_per_class of each class); optional val/<class>/... and test/<class>/...
    # the side images are read at: their largest centred square, resized to image_size x image_size
    # (0: the dataset's own size; imagefolder, whose images have no one size: 96)
    image_size: int = 0
    # CSV list files (path,label; label empty: unlabelled; paths relative to the CSV's folder or
    # absolute; optional header "path,label"): each replaces its folder under data.root. A training
    # list with no unlabelled row is benchmark mode; its labels (sorted) are the classes
    train_csv: str | None = None
    val_csv: str | None = None  # evaluation images, every row labelled with one of the classes
    test_csv: str | None = None  # test images, likewise
    # segmentation
    labelled_split: str = "1/8"  # "1/106", "1/50", "1/20", "1/8", "1/4", "1/2", "1/30", "sbd", "all"
    # or "published": the community's split files in split_dir (required then)
    # folder with a published split's labeled.txt and unlabeled.txt (UniMatch / U2PL format, e.g.
    # UniMatch's splits/pascal/92); when set, it decides the labelled and unlabelled images
    split_dir: str | None = None
    split_set: int = 0  # which of the protocol's three random split sets (0, 1, 2)
    labelled_list: str | None = None  # your own list of labelled names (one per line)
    unlabelled_list: str | None = None  # your own list of unlabelled names
    val_list: str | None = None  # your own list of evaluation names
    # your own data (folder, imagefolder) with no val list or folder: this share of the labelled
    # images (of each class, for imagefolder) is held out to evaluate on, never trained on; the
    # same images whatever the seed (a fixed shuffle of their sorted names), recorded in <run>/splits/
    val_share: float = 0.2
    crop_size: list[int] = field(default_factory=lambda: [321, 321])  # training crop (h, w)
    scale_range: list[float] = field(default_factory=lambda: [0.5, 1.5])  # random scale range
    eval_pad: list[int] | None = None  # pad evaluation images to (h, w); VOC: 505 x 505
    # image padding colour (training crops, evaluation and labelling): "mean", the dataset's mean
    # colour, or "black", zeros before normalisation as the original pads (its VOC presets)
    pad_fill: Literal["mean", "black"] = "mean"
    # demo data (digits / digit_scenes)
    test_per_class: int = 50  # held-out test images per class of the digits demo
    num_scenes: int = 1000  # digit_scenes: training scenes to generate
    val_scenes: int = 200  # digit_scenes: held-out evaluation scenes (from held-out digit images)
    scene_size: list[int] = field(default_factory=lambda: [48, 48])  # digit_scenes: (h, w)
    scene_digits: list[int] = field(default_factory=lambda: list(range(10)))  # digit_scenes: digit classes
    scale: float = 0.0  # resize factor on reading (0: the dataset's default; Cityscapes 0.5)
    limit: int = 0  # use at most this many images of each set (0: all); set by --smoke
    # pre-flight check before the first stage (and `dmt check`): "headers" opens every listed
    # image and mask header (sizes must match) and every weights file; "full" also decodes every
    # file and checks mask values; "none" checks nothing up front
    check: Literal["headers", "full", "none"] = "headers"
    # images (and masks) of more pixels are refused from their header before decoding, by the
    # pre-flight check and wherever a file is read (0: no limit); Pillow's decompression-bomb
    # threshold by default, about 9459 x 9459
    max_pixels: int = 89_478_485


@dataclass
class ModelConfig:
    """A model from the registry (``dmt models`` lists them)."""

    # a registered model (`dmt models`), or timm/<name>: any timm classification model with a new
    # classifier (`dmt models --timm PATTERN`; timm/vit_small_patch14_dinov2.lvd142m: the tag picks the hub file)
    name: str = "wrn_28_2"
    # segmentation: none | imagenet | coco (ResNet models) | dinov2 | dinov3 (the foundation encoders).
    # Classification reads no init: a timm/<name> model is pretrained exactly when `weights` is set
    init: str = "none"
    # the initial weights: a file (.safetensors or .pth state dict), or "hub": the model's published
    # file, from the Hugging Face cache (timm models, DINOv2 / DINOv3) or torch.hub's (ImageNet
    # ResNet-101), downloaded into it when absent unless HF_HUB_OFFLINE=1; null: random (segmentation
    # ImageNet init: torchvision's cache). COCO init has no hub file
    weights: str | None = None
    kwargs: dict = field(default_factory=dict)  # extra keyword arguments of the model factory (timm's create_model)
    # recompute each encoder block in the backward pass instead of keeping its activations (models
    # with set_grad_checkpointing: the DINOv2 / DINOv3 ones, timm models): much less memory, about 1/3 more compute
    grad_checkpointing: bool = False
    # BatchNorm -> SyncBatchNorm with several processes (null: on for segmentation, whose
    # per-GPU batches of 1-2 crops give useless BN statistics; off for classification)
    sync_bn: bool | None = None


@dataclass
class OptimConfig:
    """The optimizer (SGD or AdamW) and its learning-rate schedule, for one training stage."""

    epochs: float = 2120  # passes over the stage's defining set (labelled set; pseudo set in phases)
    max_steps: int = 0  # stop after this many steps (0: no limit); --smoke sets it
    # torch.optim.SGD (momentum, nesterov; weight decay added to the gradient) or AdamW (betas;
    # decoupled weight decay), as foundation encoders are fine-tuned
    optimizer: Literal["sgd", "adamw"] = "sgd"
    lr: float = 0.2  # the base learning rate; each parameter group gets lr * its lr_mult
    momentum: float = 0.9  # SGD
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])  # AdamW's running-average factors
    weight_decay: float = 5e-4  # every parameter group's, unless group_weight_decay names it
    nesterov: bool = False  # SGD
    # learning-rate multiplier per named parameter group of the model (`dmt models` lists models with
    # groups; the DINOv2 / DINOv3 ones have "encoder" and "head"), e.g. {head: 40}; others get 1
    lr_mult: dict[str, float] = field(default_factory=dict)
    group_weight_decay: dict[str, float] = field(default_factory=dict)  # e.g. {head: 0.0}; others: weight_decay
    schedule: Literal["cosine", "poly", "constant"] = "cosine"
    poly_power: float = 0.9  # poly schedule: lr * (1 - t/T) ** power


@dataclass
class TrainConfig(OptimConfig):
    """Supervised training (baseline and oracle)."""

    batch_size: int = 512
    mixup_alpha: float = 0.75  # Beta(alpha, alpha) mixup on labelled batches; 0 disables
    ema_decay: float = 0.999  # EMA of weights and buffers, evaluated and used as teacher; 0 disables


@dataclass
class PhaseConfig(OptimConfig):
    """The DMT phases: one per curriculum ratio."""

    ratios: list[float] = field(default_factory=lambda: [0.2, 0.4, 0.6, 0.8, 1.0])
    epochs: float = 750
    lr: float = 0.1
    batch_labelled: int = 16  # labelled images (or crops) per step
    batch_pseudo: int = 496  # pseudo-labelled images (or crops) per step
    gamma1: float = 4.0  # exponent where student and teacher agree
    gamma2: float = 4.0  # exponent where they disagree and the teacher is at least as confident
    ramp: bool = True  # ramp gamma up over each phase: gamma * exp(-5 (1 - t/T)^2)
    from_scratch: bool = True  # classification: a new student each phase; segmentation fine-tunes
    # classification: which images a phase keeps. "global": the top `ratio` of all images by the
    # teacher's confidence (the paper's; the CIFAR-10 presets and the digits demo keep it);
    # "class_balanced": the top `ratio` of the images predicted as each class, so a class the
    # teacher is unsure of is not starved (new presets). Segmentation's thresholds are always
    # class-balanced: there the key is refused unless left at its default (config/validate.py).
    selection: Literal["global", "class_balanced"] = "global"
    mixup_alpha: float = 0.75
    ema_decay: float = 0.999
    online_threshold: float = 0.9  # method "online": confidence above which a pixel is kept
    naive_gamma: float = 5.0  # method "naive": weight p ** naive_gamma on every pseudo pixel
    keep_labels: bool = False  # keep each finished phase's stored pseudo labels (Cityscapes: ~4 GB a phase)


@dataclass
class OracleConfig(TrainConfig):
    """Supervised training on every label of the training set (the upper bound)."""

    enabled: bool = False


@dataclass
class MutualConfig:
    """The second model of two-model segmentation methods (dmt, naive, flip).

    Model A is ``model``; model B is by default the same network with another initialisation, so
    the two differ and can label data for each other. ``name_b`` / ``kwargs_b`` make B another
    network (DINOv3-B teaching DINOv2-B, ViT-S teaching ViT-B); labelling, thresholds and weights
    are the same whatever the members are. With ``dms`` both start from ``model``'s
    initialisation instead, each trained on one of two labelled subsets that share 60 %.
    """

    name_b: str | None = None  # B's registered model (null: model.name)
    kwargs_b: dict | None = None  # B's factory arguments (null: model.kwargs)
    init_b: str = "imagenet"  # B's initialisation: none | imagenet | coco | dinov2 | dinov3
    weights_b: str | None = None  # B's weights file, or "hub" (as model.weights; None: torchvision's cache for imagenet)
    dms: bool = False  # Different Model Subsets (paper, Table 6) instead of different inits


@dataclass
class EvalConfig:
    """Evaluation and model selection."""

    batch_size: int = 256
    # the model a stage keeps: the last one; the best on held-out labelled images; or "val", the
    # original protocol (segmentation): the best on the evaluation set itself, which is also the
    # next phase's start and teacher (its scores are selected on that set: recorded as a warning)
    select: Literal["last", "heldout", "val"] = "last"
    heldout: int = 0  # segmentation: labelled images held out for model selection (select: heldout)
    every_epochs: int = 1  # select: heldout / val evaluates every this many epochs
    # segmentation inference (evaluation, pseudo-labelling, dmt eval) in windows of (h, w) pixels,
    # overlapping logits averaged (Cityscapes' protocol); null: whole images
    window: list[int] | None = None
    stride: list[int] | None = None  # step between windows (h, w); null: two thirds of the window
    # without eval.window, an image whose larger side exceeds this (after the reading scale) is
    # still predicted in windows of max_side x max_side (default stride), so memory is bounded by a
    # window, not by the image; 0: always whole. Every shipped preset's images stay whole (<= 1024)
    max_side: int = 1024


@dataclass
class TrainRuntimeConfig:
    """How training runs on the device: layout and compilation (same results, other speed)."""

    # NHWC weights and inputs ("auto": on for CUDA and CPU, where oneDNN / cuDNN's fast
    # convolutions use it; measured in docs/performance.md)
    channels_last: bool | Literal["auto"] = "auto"
    # torch.compile the training forward pass (minutes of compilation first): true (torch's
    # default mode) or a torch.compile mode; "reduce-overhead" also replays the compiled forward
    # and backward as CUDA graphs, for GPU steps bound by the host issuing kernels
    compile: bool | Literal["default", "reduce-overhead", "max-autotune"] = False
    # the members of a phase (models A and B of two-model methods, and the two baselines) run at the
    # same time, each on its own half of the processes (DDP inside each half); each member's results
    # are those of a run one after the other with that many processes per member. auto: on with 2 or
    # more processes (an even number); `dmt run ... --nproc 2` then runs A and B side by side on one GPU
    members_in_parallel: bool | Literal["auto"] = "auto"
    # steps with a non-finite loss or gradient that a stage may skip (undo on the device: model,
    # EMA and optimizer state as before the step) before it stops with an error; 0: stop at the
    # first one (the last good checkpoint is kept)
    skip_nonfinite: int = 0


# Keys dmt once had, with why they went: a config that still names one (an old run directory's
# config.yaml, a YAML file written for an older dmt, an override) loads with one warning line and
# the key dropped, since none of them changed what a run computes.
REMOVED_KEYS = {
    "train.cuda_graph": "the training step as one CUDA graph was no faster than eager on a GPU (149 against "
                        "139-146 images/s on an H200 at batch 8, under the 10% a second step path must earn) and "
                        "its GPU correctness test had not passed (docs/performance.md)",
}


@dataclass
class ExperimentConfig:
    """One experiment: the data, the model, the method and its stages."""

    description: str = ""
    task: Task = "classification"
    method: Method = "dmt"
    seed: int = 1  # run seed: every stage's seed derives from it and is recorded
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    # mixed precision: auto (= true) is bf16 autocast on CUDA (fp16 + loss scaling without bf16)
    # and on CPUs with native bf16 (AMX / AVX512-BF16); false is float32 everywhere
    amp: bool | Literal["auto"] = "auto"
    smoke: bool = False  # a few steps on a few images of every stage (set by --smoke)
    checkpoint_seconds: float = 300.0  # write a resumable checkpoint at least this often ...
    checkpoint_min_seconds: float = 10.0  # ... and after each epoch, unless one is younger than this
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    baseline: TrainConfig = field(default_factory=TrainConfig)
    phases: PhaseConfig = field(default_factory=PhaseConfig)
    oracle: OracleConfig = field(default_factory=OracleConfig)
    mutual: MutualConfig = field(default_factory=MutualConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    train: TrainRuntimeConfig = field(default_factory=TrainRuntimeConfig)
