"""What an attacker can work out about a suppressed count from everything a mart publishes.

A published mart is read as a set of CELLS (one count each: a row's numerator, reached, ...) and
the additive RELATIONS between them (a total = the sum of its parts: a place's `all` row and the
groups of one stratifier; a country and its regions; an ARC and its ICBs; a year and its months).
What the attacker knows of a cell:

- a national count is exact (an equality);
- a count published below national level was rounded to the nearest 5 and is at least 5: the true
  count, an integer, lies in [max(r - 2, 5), r + 2] (the continuous [r - 2.5, r + 2.5] less its
  non-integer ends);
- a suppressed count is unknown but not negative; when the published reason says it is a small
  count ("count below 5", or the publisher's own "*"), it lies in [0, 4]; when it says the cell was
  suppressed to protect another ("secondary suppression ..."), the cell is at least 5.

`feasible_ranges` solves, with linear programming (scipy's HiGHS), the smallest and largest value
of every suppressed cell over everything above at once, per connected component of linked cells.
`leaks` applies the guarantee: a suppressed cell whose reason disclosed it as small must keep the
whole of [0, 4]; any other suppressed cell must keep a range at least `min_count` (5) wide.
`set_ranges` is the quick version of the same on one relation at a time (the differencing
attacks: `all` minus its groups, parent minus children, year minus months).

Pure functions over plain data: the tests in test_disclosure_attacks.py read the marts and call
them.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linprog
from scipy.sparse import coo_matrix

MIN_COUNT = 5
ROUNDING_BASE = 5
# suppression reasons that tell the attacker the hidden count is under MIN_COUNT
SMALL_COUNT_REASONS = ("count below", "denominator below", "suppressed by the publisher")
# reasons that tell the attacker the hidden count is at least MIN_COUNT (it protects another cell)
PROTECTING_REASONS = ("secondary suppression",)
# reasons whose cells are the publisher's own suppression: constrain the others, but the guarantee
# is not KnowDo's to give (the publisher's file shows them)
PUBLISHER_REASONS = ("suppressed by the publisher",)
TOLERANCE = 1e-6


@dataclass
class Cell:
    """One published count. `value` is None when suppressed."""

    key: tuple
    value: float | None
    exact: bool = False  # national counts: published unrounded
    reason: str | None = None

    @property
    def is_suppressed(self) -> bool:
        return self.value is None

    @property
    def is_publishers(self) -> bool:
        return self.reason is not None and self.reason.startswith(PUBLISHER_REASONS)

    def bounds(self) -> tuple[float, float]:
        """What the attacker knows of the true count, before any relation."""
        if self.value is not None:
            if self.exact:
                return (float(self.value), float(self.value))
            # counts are integers: a count rounded to r was r - 2 .. r + 2 (base 5), and at
            # least 5 (smaller ones are suppressed)
            half = (ROUNDING_BASE - 1) // 2
            return (max(float(self.value) - half, MIN_COUNT), float(self.value) + half)
        if self.reason and self.reason.startswith(SMALL_COUNT_REASONS):
            return (0.0, MIN_COUNT - 1.0)
        if self.reason and self.reason.startswith(PROTECTING_REASONS):
            return (float(MIN_COUNT), math.inf)
        return (0.0, math.inf)

    def prior_says_small(self) -> bool:
        return self.bounds() == (0.0, MIN_COUNT - 1.0)


@dataclass
class Relation:
    """total = sum(parts)."""

    name: str
    total: tuple
    parts: list[tuple] = field(default_factory=list)

    def cells(self) -> list[tuple]:
        return [self.total, *self.parts]


@dataclass
class Range:
    key: tuple
    low: float
    high: float
    reason: str | None
    relations: list[str]


def is_narrowed(cell: Cell, low: float, high: float) -> bool:
    """The guarantee: a count disclosed as small keeps all of [0, 4]; any other keeps 5 wide."""
    if cell.prior_says_small():
        return low > TOLERANCE or high < MIN_COUNT - 1 - TOLERANCE
    return high - low < MIN_COUNT - TOLERANCE


def consistent(relation: Relation, cells: dict[tuple, Cell]) -> bool:
    """The relation can hold given the published intervals (an attacker can only use those)."""
    total_low, total_high = cells[relation.total].bounds()
    parts_low = sum(cells[p].bounds()[0] for p in relation.parts)
    parts_high = sum(cells[p].bounds()[1] for p in relation.parts)
    return parts_low <= total_high + TOLERANCE and total_low <= parts_high + TOLERANCE


def set_ranges(cells: dict[tuple, Cell], relation: Relation) -> list[Range]:
    """Each suppressed cell's range from this one relation and the cells' own bounds (the
    differencing attack): total - sum(published parts) = sum(hidden parts), or for a hidden total,
    the sum of the parts."""
    members = [(relation.total, 1.0)] + [(p, -1.0) for p in relation.parts]
    hidden = [(k, c) for k, c in members if cells[k].is_suppressed]
    if not hidden:
        return []
    # sum over hidden of c * x = -(sum over published of c * x): an interval
    rest_low = rest_high = 0.0
    for key, coefficient in members:
        if cells[key].is_suppressed:
            continue
        low, high = cells[key].bounds()
        rest_low += -coefficient * (high if coefficient > 0 else low)
        rest_high += -coefficient * (low if coefficient > 0 else high)
    out = []
    for key, coefficient in hidden:
        # c * x = rest - sum over the other hidden of c' * x'
        others_low = others_high = 0.0
        for other, c in hidden:
            if other == key:
                continue
            low, high = cells[other].bounds()
            others_low += min(c * low, c * high)
            others_high += max(c * low, c * high)
        low = (rest_low - others_high) / coefficient
        high = (rest_high - others_low) / coefficient
        if coefficient < 0:
            low, high = high, low
        own_low, own_high = cells[key].bounds()
        out.append(
            Range(key, max(low, own_low), min(high, own_high), cells[key].reason, [relation.name])
        )
    return out


def components(relations: list[Relation]) -> list[tuple[list[tuple], list[Relation]]]:
    """Connected components of cells linked by relations."""
    parent: dict[tuple, tuple] = {}

    def find(x):
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for relation in relations:
        first = find(relation.total)
        for part in relation.parts:
            other = find(part)
            if other != first:
                parent[other] = first
    grouped_cells: dict[tuple, list[tuple]] = defaultdict(list)
    grouped_relations: dict[tuple, list[Relation]] = defaultdict(list)
    for cell in parent:
        grouped_cells[find(cell)].append(cell)
    for relation in relations:
        grouped_relations[find(relation.total)].append(relation)
    return [(grouped_cells[root], grouped_relations[root]) for root in grouped_cells]


BIG = 1e7  # stands for "no upper bound" in the LP (a count is never near it)


def feasible_ranges(cells: dict[tuple, Cell], relations: list[Relation]) -> list[Range]:
    """Min and max of every suppressed cell that appears in a relation, over everything published:
    linear programming (HiGHS) over the connected components of linked cells.

    The components are independent, so they are solved together as one block-diagonal LP whose
    objective is a sum over components: its optimum is every component's optimum at once. First
    the sums of the hidden cells are minimised and maximised; the two solutions are feasible
    points (witnesses), and a cell whose values over the witnesses already span what the
    guarantee asks is shown safe without an LP of its own (its true range contains that span).
    Then, round after round, one unproven cell per component gets its exact min and max."""
    usable = [r for r in relations if all(k in cells for k in r.cells()) and consistent(r, cells)]
    # only the components with a hidden cell matter (the others would only slow the LP down)
    found = [
        (component_keys, component_relations)
        for component_keys, component_relations in components(usable)
        if any(cells[k].is_suppressed for k in component_keys)
    ]
    usable = [r for _, component_relations in found for r in component_relations]
    keys = [k for component_keys, _ in found for k in component_keys]
    index = {k: i for i, k in enumerate(keys)}
    component_of = {k: c for c, (component_keys, _) in enumerate(found) for k in component_keys}
    names = {
        c: sorted({r.name for r in component_relations})
        for c, (_, component_relations) in enumerate(found)
    }
    rows, cols, data = [], [], []
    for r, relation in enumerate(usable):
        coefficients: dict[int, float] = defaultdict(float)
        coefficients[index[relation.total]] += 1.0
        for part in relation.parts:
            coefficients[index[part]] -= 1.0
        for col, value in coefficients.items():
            rows.append(r)
            cols.append(col)
            data.append(value)
    if not usable:
        return []
    a_eq = coo_matrix((data, (rows, cols)), shape=(len(usable), len(keys))).tocsr()
    b_eq = np.zeros(len(usable))
    bounds = [cells[k].bounds() for k in keys]
    bounds = [(low, BIG if math.isinf(high) else high) for low, high in bounds]
    hidden = [k for k in keys if cells[k].is_suppressed]

    def solve(objective):
        result = linprog(objective, A_eq=a_eq, b_eq=b_eq, bounds=bounds, method="highs")
        if result.status != 0:
            raise AssertionError(
                f"the LP over the published cells failed ({result.message}): a relation assumed "
                "additive is not, or the bounds contradict; fix the relation list first"
            )
        return result.x

    def as_range(key, low, high):
        return Range(
            key,
            low,
            math.inf if high >= BIG / 10 else high,
            cells[key].reason,
            names[component_of[key]],
        )

    witnesses = []
    objective = np.zeros(len(keys))
    objective[[index[k] for k in hidden]] = 1.0
    witnesses += [solve(objective), solve(-objective)]
    out: dict[tuple, Range] = {}
    unproven = list(hidden)
    while unproven:
        still = []
        for key in unproven:
            seen = [w[index[key]] for w in witnesses]
            if not is_narrowed(cells[key], min(seen), max(seen)):
                out[key] = as_range(key, min(seen), max(seen))
            else:
                still.append(key)
        # one target per component this round
        targets, taken = [], set()
        for key in still:
            if component_of[key] not in taken:
                taken.add(component_of[key])
                targets.append(key)
        if not targets:
            break
        objective = np.zeros(len(keys))
        objective[[index[k] for k in targets]] = 1.0
        low_point, high_point = solve(objective), solve(-objective)
        for key in targets:
            out[key] = as_range(key, low_point[index[key]], high_point[index[key]])
        witnesses += [low_point, high_point]
        unproven = [k for k in still if k not in out]
    return [out[k] for k in hidden]


def leaks(cells: dict[tuple, Cell], ranges: list[Range]) -> list[Range]:
    """The ranges that break the guarantee (publisher-suppressed cells excluded)."""
    return [
        r
        for r in ranges
        if not cells[r.key].is_publishers and is_narrowed(cells[r.key], r.low, r.high)
    ]


# --- the age-standardised rate (stats.dsr_ci, PHEindicatormethods phe_dsr with Dobson's CI) ---

Z_95 = 1.959963984540054


def dsr_with_ci(events: np.ndarray, populations, weights, multiplier=100000.0):
    """Vectorised over the rows of `events` (one candidate per row): value, lower, upper."""
    events = np.asarray(events, dtype=float)
    populations = np.asarray(populations, dtype=float)
    weights = np.asarray(weights, dtype=float)
    total = events.sum(axis=1)
    dsr = (events * weights / populations).sum(axis=1) / weights.sum()
    variance = (events * (weights / populations) ** 2).sum(axis=1) / weights.sum() ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        o = np.maximum(total, 1e-9)
        lower_count = o * (1 - 1 / (9 * o) - Z_95 / (3 * np.sqrt(o))) ** 3
        upper_count = (o + 1) * (1 - 1 / (9 * (o + 1)) + Z_95 / (3 * np.sqrt(o + 1))) ** 3
        spread = np.sqrt(variance / o)
    value = dsr * multiplier
    lower = (dsr + spread * (lower_count - o)) * multiplier
    upper = (dsr + spread * (upper_count - o)) * multiplier
    value[total < 10] = np.nan
    return value, lower, upper


def dsr_integer_search(
    bands: list[dict], published: tuple, total_bounds: tuple | None, max_candidates: int = 3_000_000
) -> dict[int, set[int]]:
    """Every integer band-count vector consistent with a published age-standardised rate and its
    95% CI (to 4 decimals). `bands`: per band {count (published or None), exact, reason,
    population, weight}; `total_bounds`: the `all` row's bounds on the sum, or None. Returns, per
    band index, the set of counts some solution gives it.

    The rate is linear in the counts, so one hidden band is solved from it (its two nearest
    integers tried) while the others run over every value their bounds allow."""
    lows, highs = [], []
    for band in bands:
        low, high = Cell(("band",), band["count"], band["exact"], band["reason"]).bounds()
        lows.append(math.ceil(low - TOLERANCE))
        highs.append(high)
    if total_bounds is not None:
        # a band is at most the total minus the others' least values
        for i in range(len(bands)):
            cap = total_bounds[1] - (sum(lows) - lows[i])
            highs[i] = min(highs[i], cap)
    if any(math.isinf(h) for h in highs):
        raise ValueError("a hidden band has no upper bound (no published total): cannot search")
    highs = [math.floor(h + TOLERANCE) for h in highs]
    populations = np.asarray([b["population"] for b in bands], dtype=float)
    weights = np.asarray([b["weight"] for b in bands], dtype=float)
    free = max(range(len(bands)), key=lambda i: highs[i] - lows[i])
    others = [i for i in range(len(bands)) if i != free]
    size = int(np.prod([highs[i] - lows[i] + 1 for i in others])) * 2
    if size > max_candidates:
        raise ValueError(f"search space of {size} candidates is above the cap {max_candidates}")
    grid = (
        np.stack(
            np.meshgrid(*[np.arange(lows[i], highs[i] + 1) for i in others], indexing="ij"), axis=-1
        )
        .reshape(-1, len(others))
        .astype(float)
    )
    factor = weights / populations / weights.sum() * 100000.0
    partial = grid @ factor[others]
    solved = (published[0] - partial) / factor[free]
    candidates = []
    for rounding in (np.floor, np.ceil):
        column = rounding(solved)
        full = np.empty((len(grid), len(bands)))
        full[:, others] = grid
        full[:, free] = column
        candidates.append(full)
    grid = np.concatenate(candidates)
    grid = grid[(grid[:, free] >= lows[free]) & (grid[:, free] <= highs[free])]
    if total_bounds is not None:
        sums = grid.sum(axis=1)
        grid = grid[(sums >= total_bounds[0] - TOLERANCE) & (sums <= total_bounds[1] + TOLERANCE)]
    value, lower, upper = dsr_with_ci(grid, populations, weights)
    tolerance = 0.5e-4 + 1e-7
    keep = np.abs(value - published[0]) <= tolerance
    if published[1] is not None:
        keep &= np.abs(lower - published[1]) <= tolerance
    if published[2] is not None:
        keep &= np.abs(upper - published[2]) <= tolerance
    solutions = grid[keep]
    return {i: {int(v) for v in solutions[:, i]} for i in range(len(bands))}
