"""A generated text set: short English sentences over twelve topics, the same on every machine.

Each topic has subjects, actions and contexts; a sentence is ``"{subject} {action}
{context}."`` or ``"{Context}, {subject} {action}."``. Sentences of one topic share words and
meaning, so an embedding's nearest neighbours are mostly sentences of the same topic, and
retrieval over the set is meaningful. Nothing is downloaded and no data file is committed.
"""

from __future__ import annotations

import random

from autocompress.errors import ConfigError

TOPICS: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "cooking": (
        ("the chef", "my grandmother", "the baker", "a young cook", "the restaurant owner",
         "my roommate", "the pastry student", "our neighbour"),
        ("slices the onions very thinly", "bakes fresh bread with whole wheat flour",
         "stirs the tomato soup slowly", "roasts vegetables in a hot oven",
         "seasons the chicken with garlic and lemon", "kneads the dough for ten minutes",
         "fries eggs in a cast iron pan", "simmers a pot of lentil stew"),
        ("before dinner", "on sunday mornings", "for the family party", "in the small kitchen",
         "every friday evening", "while the rice is cooking"),
    ),
    "weather": (
        ("the forecast", "the meteorologist", "the radio announcer", "the morning news",
         "the weather app", "the local paper", "the pilot", "the coast guard"),
        ("warns of heavy rain and strong winds", "predicts snow in the mountains",
         "reports a sudden drop in temperature", "expects thunderstorms by the afternoon",
         "mentions thick fog along the coast", "says the heat wave will continue",
         "shows a hurricane moving north", "calls for clear skies and a light breeze"),
        ("for the weekend", "this evening", "across the northern region", "near the airport",
         "for the next three days", "after the long drought"),
    ),
    "sports": (
        ("the striker", "the home team", "the young goalkeeper", "the coach",
         "the tennis champion", "the marathon runner", "our captain", "the rookie"),
        ("scores a late goal", "wins the final match", "trains hard on the track",
         "misses a penalty kick", "breaks the national record",
         "signs a new contract with the club", "celebrates the victory with the fans",
         "recovers from a knee injury"),
        ("in the championship game", "at the stadium", "during the second half", "this season",
         "after a long tournament", "in front of a huge crowd"),
    ),
    "music": (
        ("the pianist", "the jazz band", "the choir", "the guitarist", "the young composer",
         "the orchestra", "the drummer", "the singer"),
        ("plays a slow melody", "rehearses the new symphony", "records an album of folk songs",
         "tunes the instruments", "performs a sold out concert",
         "writes lyrics about lost love", "improvises a long solo",
         "practises scales on the old piano"),
        ("at the concert hall", "late at night", "before the festival", "in a small studio",
         "for the radio show", "on the summer tour"),
    ),
    "travel": (
        ("the traveller", "my cousin", "the backpacker", "the tour guide", "the family",
         "the flight attendant", "the hiker", "the photographer"),
        ("books a cheap flight to lisbon", "packs a suitcase for the trip",
         "explores the old town on foot", "misses the train to the coast",
         "checks into a seaside hotel", "buys a map of the mountain trails",
         "visits the famous museum", "rents a car at the airport"),
        ("during the summer holidays", "on the first day of the journey", "before sunrise",
         "with a small budget", "after a long delay", "in a foreign country"),
    ),
    "computers": (
        ("the programmer", "the system administrator", "the data scientist",
         "the computer science student", "the security team", "the web developer",
         "the software engineer", "the startup founder"),
        ("fixes a bug in the database code", "installs updates on the server",
         "trains a neural network on the cluster", "writes unit tests for the parser",
         "restores files from a backup", "reviews a pull request",
         "debugs a memory leak in the app", "deploys the website to the cloud"),
        ("before the release", "late on a friday night", "after the outage", "on a new laptop",
         "during the hackathon", "with help from a colleague"),
    ),
    "finance": (
        ("the investor", "the central bank", "the accountant", "the small business",
         "the bank", "the stock market", "the pension fund", "my uncle"),
        ("raises interest rates", "buys shares in a technology company",
         "pays off the mortgage", "files the annual tax return", "reports record profits",
         "cuts spending on advertising", "saves money for retirement",
         "borrows money to expand"),
        ("this quarter", "after the market crash", "despite high inflation",
         "at the end of the fiscal year", "during the recession", "for the first time in years"),
    ),
    "health": (
        ("the doctor", "the nurse", "the family physician", "the physiotherapist",
         "the hospital", "the pharmacist", "the specialist", "the surgeon"),
        ("prescribes antibiotics for the infection", "checks the patient's blood pressure",
         "recommends more sleep and exercise", "treats a broken arm",
         "schedules a vaccine appointment", "explains the side effects of the medicine",
         "monitors the heart rate", "orders a blood test"),
        ("at the clinic", "during the night shift", "after the flu season",
         "in the emergency room", "every morning", "before the surgery"),
    ),
    "animals": (
        ("the cat", "the old dog", "the fox", "the horse", "the parrot", "the rabbit",
         "the owl", "the squirrel"),
        ("hunts for food in the forest", "sleeps in the warm sun", "hides from the loud storm",
         "drinks water from the stream", "plays with a ball of string",
         "climbs the tall oak tree", "runs across the open field",
         "watches the birds in the garden"),
        ("at dawn", "in the backyard", "during the cold winter", "near the farm",
         "after the rain", "all afternoon"),
    ),
    "gardening": (
        ("the gardener", "my aunt", "the volunteer", "the landscaper", "the old man next door",
         "the botanist", "the school garden club", "the florist"),
        ("plants tomato seeds", "waters the roses", "prunes the apple trees",
         "pulls weeds from the vegetable beds", "spreads compost on the soil",
         "harvests ripe strawberries", "repots the orchids", "mows the lawn"),
        ("in early spring", "after the frost", "in the community garden",
         "on a sunny afternoon", "before the summer heat", "behind the house"),
    ),
    "space": (
        ("the astronaut", "the telescope", "the space agency", "the rover", "the astronomer",
         "the satellite", "the research team", "mission control"),
        ("observes a distant galaxy", "lands on the surface of mars",
         "launches a new satellite into orbit", "detects signals from a faraway star",
         "photographs the rings of saturn", "measures the radiation levels",
         "studies a passing comet", "docks with the space station"),
        ("for the first time", "during the eclipse", "late at night",
         "after years of planning", "on the dark side of the moon", "this month"),
    ),
    "school": (
        ("the teacher", "the student", "the principal", "the tutor", "the class",
         "the librarian", "the exam board", "my sister"),
        ("grades the history essays", "studies for the maths exam",
         "explains fractions with a drawing", "reads a novel for the literature class",
         "organises a science fair", "hands out homework on geometry",
         "prepares a lesson on ancient rome", "practises spelling words"),
        ("before the final exams", "after school", "in the library", "during the first term",
         "on monday morning", "with the whole class"),
    ),
}


def _sentences_of(topic: str) -> list[str]:
    subjects, actions, contexts = TOPICS[topic]
    out = []
    for s in subjects:
        for a in actions:
            for c in contexts:
                out.append(f"{s[0].upper()}{s[1:]} {a} {c}.")
                out.append(f"{c[0].upper()}{c[1:]}, {s} {a}.")
    return out


def generate_sentences(per_topic: int = 250, seed: int = 0) -> tuple[list[str], list[int]]:
    """``per_topic`` distinct sentences from each topic, shuffled: (sentences, topic ids).

    Deterministic for a given ``(per_topic, seed)`` (a private ``random.Random``; the global
    generator is untouched).
    """
    rng = random.Random(seed)
    sentences: list[str] = []
    topics: list[int] = []
    for i, topic in enumerate(TOPICS):
        pool = _sentences_of(topic)
        if per_topic > len(pool):
            raise ConfigError(f"per_topic must be <= {len(pool)} (topic {topic!r}), got {per_topic}")
        sentences += rng.sample(pool, per_topic)
        topics += [i] * per_topic
    order = list(range(len(sentences)))
    rng.shuffle(order)
    return [sentences[j] for j in order], [topics[j] for j in order]
