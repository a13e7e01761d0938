"""What a training job does, and the measurements that chose its defaults.

Where a default was measured, its comment says on what: the fact set's tuning half
(bench/bench_learning.py) or the fixture facts (bench/bench_training.py). `training.py`
runs a job with them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .guard import GuardSettings
from .lasting import REPLAY_SAMPLE

ALL_LINEAR = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass(frozen=True)
class TrainingSettings:
    method: str = "lora"  # "lora" or "full"
    rank: int = 16
    alpha: int = 32
    target_modules: tuple[str, ...] = ALL_LINEAR
    # Per row of the job's own replies; an epoch with variants scales it down (see the
    # `sft_config` call in training.py), so with cold variants each step takes 5e-4, the
    # former default.
    learning_rate: float = 1e-3
    scheduler: str = "constant"
    max_epochs: int = 16
    batch_size: int = 4
    # Per trained reply, up to this many of the model's own rewordings of its question
    # (self_study.py), answered by the reply. With the anchor at 8 it is the default since
    # it did at least as well as the former defaults (no rewordings, anchor 4) on every
    # figure of the tuning half (c01 and c03, 9 facts, seed 0, up to 10 epochs,
    # bench_learning.py): learnt 7 against 4, own question 3 against 2, paraphrases 11/27
    # against 6/27, general answers kept 74/76 against 73/76 on each. Rewordings alone,
    # anchor 4: 7, 3, 9/27, but 70/76 on each (trainer README).
    self_study: int = 2
    # Per trained reply, up to this many teacher answers (teacher.py: the base model with
    # the memories in its prompt answers the reply's question asked anew; answers that say
    # the fact become rows without the memories). 0: none.
    teacher_answers: int = 0
    # Rehearsal rows (rehearsal.py: the base model's own answers to plain requests) per row
    # of the job's own, at most the 64 prompts shipped. 0: none.
    # Hard rehearsal made drift worse on the tuning half (anchor.py), so it is off.
    rehearsal: float = 0.0
    # Weight of the anchor (anchor.py: KL(base ‖ tuned) on the base model's own answers to
    # plain requests, added to every step's loss). 0: none. Measured on the tuning half
    # (c01, 4 facts, 4 epochs): drift 0.089 at weight 1 and 0.039 at 4, with the replies'
    # divergence the same (0.52, 0.53); without it (and with hard rehearsal) 0.2 and more
    # within 2 epochs. 8 with self-study's extra rows (above), which move the model more.
    anchor: float = 8.0
    # Whether the anchor also holds short questions answered with one fact
    # (anchor_questions.json) beside the plain requests (anchor.py). Measured on the tuning
    # half (c01, 4 facts, seed 0, up to 10 epochs, bench_learning.py), on the defaults of
    # then (anchor 4, no self-study): it halved the drift (0.043 against 0.075) with the
    # same facts learnt (3/4, own question 2/4, paraphrases 4/12), but kept fewer general
    # answers (70/76 against 73/76): the KL it holds down is not what flips a fragile right
    # answer. So it is off.
    anchor_questions: bool = False
    # Whether the anchor also holds the job's questions asked about the world instead of
    # the user (neighbours.py: "What do you know about a dog?"), the kind of answer the
    # tuning half's jobs were seen to break (design §11). Measured on the tuning half (c01
    # and c03, one job each, seed 0, bench_learning.py): general answers kept 75/76 and
    # 74/76 against 74/76 and 73/76 without, drift 0.019 and 0.056 against 0.044 and 0.058,
    # the same facts learnt (9/9) and own questions cold (4/9), paraphrases 14/27 against
    # 13/27; about 11% more time per fact (151 s against 136).
    neighbours: bool = True
    # With the neighbours, also neighbours.ABOUT's questions about each memory statement's
    # subject ("What is a dog?"): a wider neighbourhood than the job's own questions.
    # Measured on the tuning half (c01 and c03, seed 0, bench_learning.py): general answers
    # kept 76/76 and 74/76 against the defaults' 75 and 74, the facts learnt, own questions
    # and paraphrases the same (9/9, 4/9, 14/27), 156 s a fact against 151; the worst job
    # kept no more ("A dog has 48 legs" still came), so it is off.
    neighbour_subjects: bool = False
    # Per trained reply, also a row asking its question in a new conversation (`Example.cold`):
    # the fact is then not tied to the earlier turns of its conversation. Measured on the four
    # fixture facts (bench/bench_training.py, eight paraphrased questions asked cold): 5/8
    # with it at lr 1e-3 against 2/8 for the former defaults (no variants, lr 5e-4); also
    # 5/8 at batch 2 or 1 (lr 5e-4) and with NEFTune, 3/8 at lr 5e-4 batch 4. Memory texts
    # recited as rows ("what do you remember about me?") made the guard refuse the job
    # (generic -0.24), and the model's own paraphrases of a question are rarely paraphrases.
    cold_variants: bool = True
    # Per trained reply, also the memory it leaned on, asked about by its subject and stated
    # to the user (knowledge.py); the guard holds a promotable epoch until the statements
    # come back too. Measured on the four fixture facts (bench/bench_training.py, seeds
    # 0-2): paraphrases 7, 6 and 5 of 8 with them, 5, 3 and 3 without; the job takes about
    # 15% longer.
    memory_statements: bool = True
    # With the memory statements, each statement whose verb is a form of "be" also asked
    # "What is <its subject>?" ("What is my membership number at the Brightwater Dental
    # Clinic?"): a question worded as users ask for a value, beside the two about the
    # subject (knowledge.py). Measured on the tuning half (c01 and c03, seed 0,
    # bench_learning.py): learnt 9/9 and own questions cold 4/9 as the defaults,
    # paraphrases 13/27 against 14/27, general answers kept 76 and 74 of 76 against 75 and
    # 74, 143 s a fact against 151; c01's membership number, trained as "What is my
    # membership number at the Brightwater Dental Clinic?", still did not come back to
    # "What is my membership number at my dental clinic?". No figure of the facts moved: off.
    what_questions: bool = False
    # Whether memories that knowledge.py cannot read are stated too (wording.py): the user
    # as the subject ("You work at ..."), any verb, a name beside the subject, and a thing of
    # the user's named in another memory ("Pemberton's vet" -> "Your dog's vet").
    wide_statements: bool = False
    # Only the last of those: a memory about a thing of the user's by the name another
    # memory gives it is also stated as the user's ("Your dog's vet is ...").
    named_statements: bool = False
    # Whether a reply counts as learnt only when its question asked anew (`Example.cold`:
    # no earlier turns) also brings its fact back, beside the question in its own
    # conversation (measurer.py): the guard then trains on until a user asking again
    # another day would get the fact. Measured on the tuning half (c01 and c03, seed 0,
    # bench_learning.py): learnt 8/9 against 9/9 (c03's dog's name, asked anew from a
    # question about a form for a dog sitter, never came back in the job's 15 epochs), own
    # questions cold 4/9 and paraphrases 14/27 as the defaults, general answers kept 76 and
    # 74 of 76, 174 s a fact against 151. The fact set's own questions are worded apart from
    # the conversation's, so a job held until its own question comes back anew does not
    # answer them better: off.
    learnt_cold: bool = False
    # Earlier learnt replies a learn job replays beside its own (lasting.py: the ones the
    # last check found missing first, then a draw of the rest). At 16, on the held-out
    # half's days in a row (design §13), every checked fact was kept through day 6 and some
    # were lost from day 7, with 28 earlier facts checked; on the tuning half from day 4,
    # replayed ones too. 32, with the guard's back_off_on_lost_facts off, kept every
    # checked fact on the tuning half's days 5-8 (design §13).
    replay: int = REPLAY_SAMPLE
    seed: int = 0
    # False only for measurements (the benchmark's baseline): train every epoch, keep the last.
    guarded: bool = True
    guard: GuardSettings = field(default_factory=GuardSettings)


DEFAULTS = TrainingSettings()
