"""``gru train music``: next-step prediction of piano rolls (`gru.tasks.music`)."""

from __future__ import annotations

from gru.cli import options

__all__ = ["add", "run"]


def add(tasks):
    from gru.tasks.music import PRESETS

    music = tasks.add_parser(
        "music",
        help="polyphonic music: predict each step of piano rolls (JSB Chorales, Nottingham)",
        description="Train a recurrent model to predict the 88 keys of each step of piano rolls "
        "from the steps before it, and report the test NLL (nats per step: the 88 keys' summed "
        "binary cross-entropy, averaged over every step) beside Chung et al. 2014 and the "
        "per-key frequency baseline. --preset chung2014: the paper's ~20k-parameter models, "
        "RMSProp, weight noise 0.075, gradients clipped at norm 1, early stopping on the "
        "validation NLL; --preset strong: a GRU(256) with layer norm and dropout; --preset "
        "nade: a GRU(128) with the 88 keys of a step modelled jointly (RNN-NADE), scored by "
        "the same NLL, exact for joint keys too.",
        epilog=options.examples(
            "gru train music --data JSB_Chorales.mat --out runs/jsb",
            "gru train music --data JSB_Chorales.mat --cell lstm --seed 1 --out runs/jsb-lstm",
            "gru train music --data JSB_Chorales.mat --preset nade --out runs/jsb-nade",
        ),
    )
    options.add_data_option(
        music,
        "--data",
        metavar="PATH",
        help="a .mat file of piano rolls with the cell arrays traindata, validdata and "
        "testdata (the Boulanger-Lewandowski et al. 2012 files), or a folder of .mid files "
        "(sorted by name, every tenth from the 9th for validation, from the 10th for test)",
    )
    music.add_argument(
        "--steps-per-beat",
        type=options.positive_int,
        help="steps a beat when reading MIDI files (default 4: a step a sixteenth note in 4/4)",
    )
    music.add_argument(
        "--preset", choices=sorted(PRESETS), help="model and training settings (default chung2014)"
    )
    _model_options(music)
    options.add_training_options(
        music,
        {
            "epochs": "500 (chung2014), 100 (strong), 30 (nade)",
            "batch_size": "16 (nade: 1)",
            "lr": "1e-3, 2e-3 (strong)",
        },
    )
    return music


def _model_options(music) -> None:
    from gru.tasks.music import CELLS, OUTPUTS

    model = music.add_argument_group("model (default: the preset's)")
    model.add_argument(
        "--cell",
        choices=CELLS,
        help="gru (gru.GRU), lstm (torch.nn.LSTM) or rnn (torch.nn.RNN, tanh) (default gru)",
    )
    model.add_argument(
        "--hidden-size",
        type=options.positive_int,
        help="units (default: ~20k parameters, gru 46, lstm 36, rnn 100; strong 256, nade 128)",
    )
    model.add_argument(
        "--layers", type=options.positive_int, dest="num_layers", metavar="LAYERS", help="layers"
    )
    model.add_argument("--dropout", type=float, help="dropout on the layer's outputs")
    model.add_argument(
        "--weight-noise", type=float, help="std of the noise added to every weight per step"
    )
    model.add_argument(
        "--output",
        choices=OUTPUTS,
        help="the 88 keys of a step: independent Bernoullis, or nade: modelled jointly, each "
        "key given the keys below it in the step (default independent; preset nade: nade)",
    )
    model.add_argument(
        "--nade-hidden",
        type=options.positive_int,
        metavar="UNITS",
        help="hidden units of the NADE output (default 150)",
    )
    model.add_argument(
        "--clock",
        type=int,
        metavar="STEPS",
        help="also read each step's position in a cycle of STEPS steps (t mod STEPS, one-hot; "
        "4: a bar of 4/4 in JSB's quarter notes; default 0: none)",
    )
    model.add_argument(
        "--attention",
        type=int,
        metavar="KEYS",
        help="the layer's outputs also look back at their own past (causal attention, queries "
        "and keys of KEYS; helps Nottingham, not JSB); default 0: none",
    )
    model.add_argument(
        "--limit", type=options.positive_int, metavar="N", help="use at most N pieces per split"
    )


def run(args) -> int:
    from gru.tasks.music import MusicModel

    def preset():
        return MusicModel.from_preset(args.preset or "chung2014").config

    config, out, resume, stored = options.train_config(
        args, MusicModel, preset, fresh_on_resume=args.preset is not None
    )
    data = options.needs(args.data, "--data", stored, "source")
    report = options.fit(args, MusicModel, config, out, resume, data)
    if not options.ran(out, report):
        return 0
    print(
        f"test NLL: {report.test['nll']:.4f} nats per step ({report.test['nll_after_first']:.4f} "
        f"without first steps) on {options.count(report.pieces['test'], 'test piece')}, "
        f"{config.cell} with {config.output} keys, {report.parameters:,} parameters (weights of "
        f"epoch {report.best_epoch})"
    )
    for name, scores in report.baselines.items():
        print(f"  baseline, {name}: {scores['nll']:.4f}")
    return 0
