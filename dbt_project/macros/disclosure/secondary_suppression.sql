{#-
    Secondary (complementary) suppression.

    A published table is a web of additive relations: the groups of a stratifier add up to the
    place's `all` row, the regions of a country add up to the national row, the ICBs of an ARC add
    up to the ARC, the months of a year add up to the year. Each relation is a SET of cells (the
    total and its parts). Primary suppression hides the small counts; that is not enough, because
    within a set the total minus the published parts gives a hidden part back (or pins it within
    the rounding error of the published cells).

    A set is EXPOSED when
      - exactly one of its cells is suppressed (the others give it back), or
      - its suppressed cells hold, together, fewer than `min_count` events: the published cells of
        the set (exact national counts above all) would then tell that every hidden cell is
        smaller than the threshold, even narrower than "under 5".
    In every exposed set the published cell with the lowest (priority, size, order key) is
    suppressed too: the smallest count, so the least information is lost; priority 1 marks cells
    to keep published if anything else will do (national totals). A cell suppressed for one set
    can expose another set it belongs to (a region's `all` row is also a child of the national
    `all` row), so the passes repeat until no set is exposed: the result is stable, whatever the
    shape of the web.

    restricted.secondary_suppression does this over one array element per (set, cell) membership; a
    model builds the memberships of its cells (every relation it publishes) and calls it through
    disclosure_secondary_suppressed_cells() below. The sizes are the TRUE counts (never published):
    a withheld count (the publisher's own suppression, NULL) counts as 0, its most exposed value.
    It only adds suppressions: what primary suppression hid stays hidden.
-#}

{% macro disclosure_secondary_suppression_function_sql() %}
-- in `restricted` (no reader may use that schema): it takes the true counts, it uses temporary
-- tables, and the `stats` schema holds only the immutable functions analysts may call (an earlier
-- build of this change put it there: dropped)
drop function if exists stats.secondary_suppression(text[], text[], boolean[], numeric[], integer[], text[], numeric);
create or replace function restricted.secondary_suppression(
    in_set_ids text[],
    in_cell_ids text[],
    in_is_suppressed boolean[],
    in_cell_sizes numeric[],
    in_priorities integer[],
    in_order_keys text[],
    min_count numeric default 5
)
returns table (suppressed_cell_id text, suppression_pass integer)
language plpgsql
volatile
as $fn$
#variable_conflict use_column
declare
    pass_number integer := 0;
    added integer;
    membership_count integer := coalesce(array_length(in_set_ids, 1), 0);
begin
    if coalesce(array_length(in_cell_ids, 1), 0) <> membership_count
        or coalesce(array_length(in_is_suppressed, 1), 0) <> membership_count
        or coalesce(array_length(in_cell_sizes, 1), 0) <> membership_count
        or coalesce(array_length(in_priorities, 1), 0) <> membership_count
        or coalesce(array_length(in_order_keys, 1), 0) <> membership_count then
        raise exception 'restricted.secondary_suppression: the membership arrays need the same length '
            '(set ids %, cell ids %)', membership_count, array_length(in_cell_ids, 1)
            using errcode = '22023';
    end if;
    if membership_count = 0 then
        return;
    end if;

    drop table if exists pg_temp.sdc_memberships;
    drop table if exists pg_temp.sdc_cells;
    create temporary table sdc_memberships on commit drop as
        select distinct m.set_id, m.cell_id
        from unnest(in_set_ids, in_cell_ids) as m (set_id, cell_id);
    -- one row per cell; a cell listed as suppressed in any membership is suppressed
    create temporary table sdc_cells on commit drop as
        select distinct on (c.cell_id)
            c.cell_id, c.is_suppressed, coalesce(c.cell_size, 0) as cell_size,
            coalesce(c.priority, 0) as priority, coalesce(c.order_key, '') as order_key,
            null::integer as pass
        from unnest(in_cell_ids, in_is_suppressed, in_cell_sizes, in_priorities, in_order_keys)
            as c (cell_id, is_suppressed, cell_size, priority, order_key)
        order by c.cell_id, c.is_suppressed desc;
    alter table sdc_cells add primary key (cell_id);
    create index on sdc_memberships (set_id);
    create index on sdc_memberships (cell_id);
    analyze sdc_cells;
    analyze sdc_memberships;

    loop
        pass_number := pass_number + 1;
        with exposed_sets as (
            select m.set_id
            from sdc_memberships as m
            inner join sdc_cells as c on m.cell_id = c.cell_id
            group by m.set_id
            having
                count(*) filter (where c.is_suppressed) = 1
                or (
                    count(*) filter (where c.is_suppressed) > 1
                    and sum(c.cell_size) filter (where c.is_suppressed) < min_count
                )
        ),
        chosen as (
            select distinct on (m.set_id) m.cell_id
            from exposed_sets as e
            inner join sdc_memberships as m on e.set_id = m.set_id
            inner join sdc_cells as c on m.cell_id = c.cell_id
            where not c.is_suppressed
            order by m.set_id, c.priority, c.cell_size, c.order_key, c.cell_id
        )
        update sdc_cells
        set is_suppressed = true, pass = pass_number
        from (select distinct cell_id from chosen) as picked
        where sdc_cells.cell_id = picked.cell_id;
        get diagnostics added = row_count;
        exit when added = 0;
    end loop;

    return query
        select c.cell_id, c.pass from sdc_cells as c where c.pass is not null;
    drop table pg_temp.sdc_memberships;
    drop table pg_temp.sdc_cells;
end;
$fn$;

comment on function restricted.secondary_suppression(text[], text[], boolean[], numeric[], integer[], text[], numeric) is
    'Secondary (complementary) suppression over additive relations. One array element per (set, '
    'cell) membership: set id, cell id, is the cell suppressed, its true size, its priority (1 = '
    'keep published if possible) and an order key (ties). Repeats until no set has exactly one '
    'suppressed cell or suppressed cells summing to under min_count, each time suppressing the '
    'published cell with the lowest (priority, size, order key) of every such set. Returns the '
    'cells it suppressed with the pass that suppressed them. Uses temporary tables (volatile).';

{% endmacro %}


{#-
    The cells to suppress secondarily, as a SELECT for a CTE, from a relation (CTE) with one row per
    (set, cell) membership and the columns set_id, cell_id, is_suppressed, cell_size, priority and
    order_key:

        secondary_suppressed as (
            {{ disclosure_secondary_suppressed_cells('memberships') }}
        ),

    returns the column `cell_id` (one row per cell to suppress) and `suppression_pass`.
-#}
{% macro disclosure_secondary_suppressed_cells(memberships) -%}
    select suppressed.suppressed_cell_id as cell_id, suppressed.suppression_pass
    from (
        select
            array_agg(set_id) as set_ids,
            array_agg(cell_id) as cell_ids,
            array_agg(is_suppressed) as suppressed_flags,
            array_agg(cell_size::numeric) as cell_sizes,
            array_agg(priority::integer) as priorities,
            array_agg(order_key::text) as order_keys
        from {{ memberships }}
    ) as arrays
    cross join lateral restricted.secondary_suppression(
        arrays.set_ids, arrays.cell_ids, arrays.suppressed_flags, arrays.cell_sizes,
        arrays.priorities, arrays.order_keys, {{ var('disclosure_min_count') }}
    ) as suppressed
{%- endmacro %}


{#-
    The memberships (for disclosure_secondary_suppressed_cells) of the additive relation every mart
    publishes: in each `set_columns` x stratifier, the `all` row is the sum of the stratifier's
    groups, so the `all` cell and the groups' cells form one set. A SELECT (for a CTE, or one branch
    of a union) over `cells` (aliased `cell`; needs the `set_columns`, stratifier and group_code);
    the other arguments are SQL expressions over `cell`. `below_national_only` leaves out the sets of
    national rows (published unrounded, never suppressed).
-#}
{% macro disclosure_stratifier_set_memberships(
    cells,
    set_columns,
    cell_id,
    is_suppressed,
    cell_size,
    priority='0',
    order_key="concat_ws('|', lpad(coalesce(cell.group_order, 0)::text, 4, '0'), cell.group_code)",
    set_id_prefix=none,
    below_national_only=true
) -%}
    select
        concat_ws('|',
            {%- if set_id_prefix %} '{{ set_id_prefix }}',{% endif %}
            {%- for column in set_columns %} cell.{{ column }},{% endfor %}
            stratifiers.stratifier) as set_id,
        {{ cell_id }} as cell_id,
        {{ is_suppressed }} as is_suppressed,
        {{ cell_size }} as cell_size,
        {{ priority }} as priority,
        {{ order_key }} as order_key
    from {{ cells }} as cell
    inner join (
        select distinct {% for column in set_columns %}{{ column }}, {% endfor %}stratifier
        from {{ cells }}
        where stratifier <> 'all'{% if below_national_only %} and geography_level <> 'national'{% endif %}
    ) as stratifiers
        on
            {%- for column in set_columns %}
            cell.{{ column }} = stratifiers.{{ column }}
            and
            {%- endfor %} cell.stratifier in (stratifiers.stratifier, 'all')
{%- endmacro %}


{#- SQL condition, true when one of `cell_ids` (SQL expressions; a NULL one matches nothing) is
    among the cells `secondary_suppressed` (the CTE of disclosure_secondary_suppressed_cells) hides. -#}
{% macro disclosure_is_secondary_suppressed(cell_ids, secondary_suppressed='secondary_suppressed') -%}
    exists (
        select 1 from {{ secondary_suppressed }}
        where {{ secondary_suppressed }}.cell_id in ({{ cell_ids | join(', ') }})
    )
{%- endmacro %}
