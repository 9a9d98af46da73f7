"""Makes fixtures/repmlpnet/: small RepMLPNets from tools/repmlpnet_ref.py with real PyTorch.

    /usr/bin/python3 tools/make_repmlpnet_fixtures.py [OUT_DIR]

Per case NAME (see CASES):
  NAME.json                 RepMLPNet constructor arguments + "family" (+ "input_size" where
                            the input is not one partition per map in stage 0)
  NAME.train.pth            training-time state dict, randomized weights and BN statistics
  NAME.deploy.pth           model.state_dict() after locality_injection() of that model
                            (fc3.weight stored as the transposed view PyTorch leaves)
  NAME.input.npy            float32 NCHW, batch 2
  NAME.train.logits.npy     eval-mode logits of the training-time model
  NAME.deploy.logits.npy    logits of the injected model
Checkpoints as users hold them (CHECKPOINTS): the training script's own files
({'model', 'optimizer', 'lr_scheduler', 'max_accuracy', 'epoch', 'config': yacs CfgNode},
optionally 'amp' and 'ema'), a DDP `module.` state dict, a `{'model': sd}` release file.
An image and the expected `predict` top-5 (test.py's preprocessing). manifest.json lists
everything for the tests. (torch.onnx.export files are made on the fly by
tools/torch_repmlpnet_export.py onnx, to keep the committed fixtures small.)

The state dicts and inputs are byte-identical from run to run (seeded); logits and
probabilities may differ in the last float32 bits with the machine's thread count.

Everything here is produced by this script; nothing is hand-edited.
"""
import copy
import json
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from repmlpnet_ref import FAMILY, build_model, input_size, install_yacs_standin, locality_injection, randomize  # noqa: E402
import image_ref  # noqa: E402

BATCH = 2

CASES = {
    # Several partitions per map: input 2x the nominal 32, so every stage but the last
    # holds 2x2 partitions, and C > S (the repository's partition re-ordering matters).
    'net_a': dict(in_channels=3, num_class=10, patch_size=4, num_blocks=[1, 1, 2, 1], channels=[8, 16, 16, 16],
                  hs=[8, 4, 2, 2], ws=[8, 4, 2, 2], sharesets_nums=[2, 4, 4, 8], reparam_conv_k=[1, 3],
                  globalperceptron_reduce=4, input_size=64),
    # Non-square everything: patch [2, 2], partitions 4x6/2x3, image 16x24 (2x2 partitions in
    # stages 0 and 1), three stages, kernels 1/3/5 (5 wider than a 2-row partition), reduce 2.
    'net_b': dict(in_channels=3, num_class=7, patch_size=[2, 2], num_blocks=[1, 1, 1], channels=[8, 16, 32],
                  hs=[4, 2, 2], ws=[6, 3, 3], sharesets_nums=[2, 4, 8], reparam_conv_k=[1, 3, 5],
                  globalperceptron_reduce=2, input_size=[16, 24]),
    # No local perceptron (reparam_conv_k null), nominal input (no input_size field: one
    # partition per map), S == C in stage 0, two stages.
    'net_c': dict(in_channels=3, num_class=5, patch_size=4, num_blocks=[1, 1], channels=[8, 16], hs=[4, 2],
                  ws=[4, 2], sharesets_nums=[8, 4], reparam_conv_k=None, globalperceptron_reduce=4),
}


def save_npy(path, a):
    np.save(path, np.ascontiguousarray(a, dtype=np.float32))


def partitions(cfg, H, W):
    """[[hp, wp] per stage] for an H x W input."""
    p = cfg['patch_size']
    ph, pw = (p, p) if isinstance(p, int) else p
    h, w, out = H // ph, W // pw, []
    for i, (hi, wi) in enumerate(zip(cfg['hs'], cfg['ws'])):
        if h % hi or w % wi:
            raise ValueError(f'stage {i}: map {h}x{w} is not a multiple of {hi}x{wi}')
        out.append([h // hi, w // wi])
        h, w = h // 2, w // 2
    return out


@torch.no_grad()
def make_case(out, name, cfg, seed):
    arch = dict(cfg, family=FAMILY)
    with open(os.path.join(out, f'{name}.json'), 'w') as f:
        json.dump(arch, f, indent=2)
        f.write('\n')
    H, W = input_size(arch)
    shape = (BATCH, cfg['in_channels'], H, W)
    x = torch.randn(shape, generator=torch.Generator().manual_seed(seed))
    save_npy(os.path.join(out, f'{name}.input.npy'), x.numpy())
    torch.manual_seed(seed)
    model = randomize(build_model(arch), seed)
    train_sd = model.state_dict()
    torch.save(train_sd, os.path.join(out, f'{name}.train.pth'))
    save_npy(os.path.join(out, f'{name}.train.logits.npy'), model(x).numpy())
    deployed = locality_injection(copy.deepcopy(model))
    deploy_sd = deployed.state_dict()
    torch.save(deploy_sd, os.path.join(out, f'{name}.deploy.pth'))
    y = deployed(x)
    save_npy(os.path.join(out, f'{name}.deploy.logits.npy'), y.numpy())
    # The deploy state dict loads strictly into a deploy-built model with the same logits.
    check = build_model(arch, deploy=True)
    check.load_state_dict(deploy_sd, strict=True)
    assert torch.allclose(check(x), y, rtol=0, atol=1e-6)
    return model, deployed, dict(
        name=name, config=f'{name}.json', input_shape=list(shape), num_class=cfg['num_class'],
        partitions=partitions(cfg, H, W), groups=[c // s for c, s in zip(cfg['channels'], cfg['sharesets_nums'])],
        train_keys=len(train_sd), deploy_keys=len(deploy_sd),
        files={k: f'{name}.{k}' for k in ('train.pth', 'deploy.pth', 'input.npy', 'train.logits.npy',
                                           'deploy.logits.npy')})


# --- the training script's checkpoint -----------------------------------------------------
def training_config(CfgNode, arch_name, output):
    """config.py's defaults as update_config() leaves them for a run (frozen, like every
    checkpoint main_repmlp.py writes)."""
    c = {
        'BASE': [''],
        'DATA': {'BATCH_SIZE': 128, 'DATA_PATH': '/path/to/imgnet/', 'DATASET': 'imagenet', 'IMG_SIZE': 224,
                 'TEST_SIZE': 224, 'TEST_BATCH_SIZE': 128, 'INTERPOLATION': 'bilinear', 'ZIP_MODE': False,
                 'CACHE_MODE': 'part', 'PIN_MEMORY': True, 'NUM_WORKERS': 8},
        'MODEL': {'ARCH': arch_name, 'RESUME': '', 'NUM_CLASSES': 1000, 'LABEL_SMOOTHING': 0.1},
        'TRAIN': {'START_EPOCH': 0, 'EPOCHS': 100, 'WARMUP_EPOCHS': 10, 'WEIGHT_DECAY': 0.1, 'BASE_LR': 0.002,
                  'WARMUP_LR': 0.0, 'MIN_LR': 0.0, 'CLIP_GRAD': 5.0, 'AUTO_RESUME': True, 'ACCUMULATION_STEPS': 0,
                  'USE_CHECKPOINT': False,
                  'LR_SCHEDULER': {'NAME': 'cosine', 'DECAY_EPOCHS': 30, 'DECAY_RATE': 0.1},
                  'OPTIMIZER': {'NAME': 'adamw', 'EPS': 1e-08, 'BETAS': (0.9, 0.999), 'MOMENTUM': 0.9},
                  'EMA_ALPHA': 0.0, 'EMA_UPDATE_PERIOD': 8},
        'AUG': {'MIXUP': 0.0, 'CUTMIX': 0.0, 'CUTMIX_MINMAX': None, 'MIXUP_PROB': 1.0, 'MIXUP_SWITCH_PROB': 0.5,
                'MIXUP_MODE': 'batch', 'PRESET': None, 'COLOR_JITTER': 0.4, 'AUTO_AUGMENT': 'rand-m9-mstd0.5-inc1',
                'REPROB': 0.25, 'REMODE': 'pixel', 'RECOUNT': 1},
        'TEST': {'CROP': False},
        'AMP_OPT_LEVEL': 'O0', 'OUTPUT': output, 'TAG': 'default', 'SAVE_FREQ': 20, 'PRINT_FREQ': 10, 'SEED': 0,
        'EVAL_MODE': False, 'THROUGHPUT_MODE': False, 'LOCAL_RANK': 0,
    }
    node = CfgNode(c)
    node.freeze()
    return node


def adamw_state(model, input_shape, steps=1, seed=0):
    """optimizer.state_dict() of main_repmlp.py's AdamW (two groups: decay / no decay, as
    optimizer.py splits them) after `steps` steps on a copy, so the model itself is kept."""
    m = copy.deepcopy(model).eval()  # eval: BN statistics untouched by the step
    decay, no_decay = [], []
    for name, p in m.named_parameters():
        (no_decay if p.ndim == 1 or name.endswith('.bias') else decay).append(p)
    opt = torch.optim.AdamW([{'params': decay}, {'params': no_decay, 'weight_decay': 0.0}], lr=0.002,
                            betas=(0.9, 0.999), eps=1e-8, weight_decay=0.1)
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        x = torch.randn(input_shape, generator=g)
        opt.zero_grad()
        m(x).square().mean().backward()
        opt.step()
    return opt.state_dict()


def cosine_scheduler_state(base_lr, n_iter, epochs=100, warmup_epochs=10):
    """What timm's CosineLRScheduler.state_dict() holds (its __dict__ without the optimizer):
    plain numbers, strings, lists and None."""
    warmup_t = warmup_epochs * n_iter
    return {'param_group_field': 'lr', '_initial_param_group_field': 'initial_lr', 'base_values': [base_lr, base_lr],
            'metric': None, 't_in_epochs': False, 'noise_range_t': None, 'noise_pct': 0.67, 'noise_type': 'normal',
            'noise_std': 1.0, 'noise_seed': 42, 't_initial': epochs * n_iter, 'lr_min': 0.0, 'cycle_mul': 1.0,
            'cycle_decay': 1.0, 'cycle_limit': 1, 'warmup_t': warmup_t, 'warmup_lr_init': 0.0,
            'warmup_prefix': False, 'k_decay': 1.0, 'warmup_steps': [base_lr / warmup_t, base_lr / warmup_t]}


def training_checkpoint(model, input_shape, arch_name, epoch, max_accuracy, output, ema=None, amp=False, seed=0):
    """The dict save_checkpoint()/save_latest() write: model, optimizer, lr_scheduler,
    max_accuracy, epoch, config (+ 'amp' when AMP_OPT_LEVEL != 'O0', 'ema' with an EMA)."""
    CfgNode = install_yacs_standin()
    config = training_config(CfgNode, arch_name, output)
    state = {'model': model.state_dict(),
             'optimizer': adamw_state(model, (1,) + tuple(input_shape[1:]), seed=seed),
             'lr_scheduler': cosine_scheduler_state(0.002, 1251),
             'max_accuracy': max_accuracy,
             'epoch': epoch,
             'config': config}
    if amp:
        config.__dict__['__immutable__'] = False
        config['AMP_OPT_LEVEL'] = 'O1'
        config.freeze()
        state['amp'] = {'loss_scaler0': {'loss_scale': 65536.0, 'unskipped': 0}}
    if ema is not None:
        state['ema'] = ema.state_dict()
    return state


@torch.no_grad()
def ema_copy(model, seed):
    """An EMA model: the same network with weights a little off (what update_model_ema keeps)."""
    ema = copy.deepcopy(model)
    g = torch.Generator().manual_seed(seed)
    for t in ema.state_dict().values():
        if t.is_floating_point():
            t.add_(torch.randn(t.shape, generator=g) * 0.02 * (t.abs().max() + 1e-3))
    return ema.eval()


# --- predict ------------------------------------------------------------------------------
def make_image(path, w, h, seed):
    """A small RGB PNG with structure (gradients + a disc) so classes differ."""
    from PIL import Image
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    r = (xx * 255 // max(w - 1, 1)).astype(np.uint8)
    gch = (yy * 255 // max(h - 1, 1)).astype(np.uint8)
    disc = ((xx - w * 0.6) ** 2 + (yy - h * 0.4) ** 2) < (min(w, h) * 0.3) ** 2
    b = np.where(disc, 230, 20).astype(np.uint8)
    a = np.stack([r, gch, b], -1)
    a = np.clip(a.astype(np.int16) + rng.integers(-20, 20, a.shape), 0, 255).astype(np.uint8)
    Image.fromarray(a, 'RGB').save(path)


@torch.no_grad()
def predict_top(model, image, size, k=5):
    """test.py's transforms: Resize(size) (shorter side, bilinear), CenterCrop(size),
    ToTensor, Normalize(ImageNet mean/std); softmax top-k."""
    x = image_ref.preprocess(image, resize=size, crop=size)
    p = torch.softmax(model(torch.from_numpy(x)[None]), 1)[0]
    v, i = p.topk(k)
    return [{'index': int(a), 'probability': float(b)} for a, b in zip(i, v)]


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, '..', 'fixtures', 'repmlpnet')
    os.makedirs(out, exist_ok=True)
    manifest = {'cases': [], 'checkpoints': [], 'predict': []}
    models = {}
    for seed, (name, cfg) in enumerate(CASES.items(), start=1):
        train, deploy, entry = make_case(out, name, cfg, seed)
        models[name] = (train, deploy, entry)
        manifest['cases'].append(entry)

    # The training script's checkpoint of the several-partitions case, as ckpt_epoch_N.pth.
    train, _, entry = models['net_a']
    ck = training_checkpoint(train, entry['input_shape'], 'net_a', epoch=3, max_accuracy=12.5,
                             output='output/net_a/default', seed=11)
    torch.save(ck, os.path.join(out, 'net_a.ckpt_epoch_3.pth'))
    manifest['checkpoints'].append(dict(file='net_a.ckpt_epoch_3.pth', case='net_a', kind='training-script',
                                        entries=list(ck), model_entry='model', epoch=3, max_accuracy=12.5,
                                        config_arch='net_a', logits='net_a.train.logits.npy'))
    # save_latest with AMP and an EMA copy, on the smallest case.
    train, _, entry = models['net_c']
    ema = ema_copy(train, 5)
    ck = training_checkpoint(train, entry['input_shape'], 'net_c', epoch=7, max_accuracy=41.0,
                             output='output/net_c/default', ema=ema, amp=True, seed=12)
    torch.save(ck, os.path.join(out, 'net_c.latest.pth'))
    x = torch.from_numpy(np.load(os.path.join(out, 'net_c.input.npy')))
    with torch.no_grad():
        save_npy(os.path.join(out, 'net_c.ema.logits.npy'), ema(x).numpy())
    manifest['checkpoints'].append(dict(file='net_c.latest.pth', case='net_c', kind='training-script',
                                        entries=list(ck), model_entry='model', epoch=7, max_accuracy=41.0,
                                        config_arch='net_c', logits='net_c.train.logits.npy',
                                        ema_logits='net_c.ema.logits.npy'))
    # DDP prefix and the release's {'model': sd} wrapper.
    sd = train.state_dict()
    torch.save({f'module.{k}': v for k, v in sd.items()}, os.path.join(out, 'net_c.module.pth'))
    manifest['checkpoints'].append(dict(file='net_c.module.pth', case='net_c', kind='ddp', prefix='module.',
                                        logits='net_c.train.logits.npy'))
    torch.save({'model': sd}, os.path.join(out, 'net_c.model_wrapped.pth'))
    manifest['checkpoints'].append(dict(file='net_c.model_wrapped.pth', case='net_c', kind='release',
                                        wrapper=['model'], logits='net_c.train.logits.npy'))

    # predict: one PNG (landscape, so the shorter-side resize and the centre crop both act).
    img = os.path.join(out, 'sample.png')
    make_image(img, 45, 30, 3)
    for name in ('net_a', 'net_c'):
        train, deploy, entry = models[name]
        size = entry['input_shape'][2]
        manifest['predict'].append(dict(case=name, image='sample.png', size=size, top=predict_top(train, img, size),
                                        deploy_top=predict_top(deploy, img, size)))

    with open(os.path.join(out, 'manifest.json'), 'w') as f:
        json.dump(manifest, f, indent=2)
        f.write('\n')
    total = sum(os.path.getsize(os.path.join(out, n)) for n in os.listdir(out))
    print(f'{out}: {len(os.listdir(out))} files, {total / 1e6:.2f} MB')


if __name__ == '__main__':
    main()
