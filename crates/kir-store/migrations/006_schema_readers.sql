-- Which older kir may still run on the schema: a rolling upgrade has old and new replicas on one
-- store at once. A migration that only adds (tables, nullable or defaulted columns, indexes)
-- keeps min_reader at 0: every older kir runs with it. One that an older kir cannot read past
-- (a renamed or dropped column, a changed meaning) records its own version here, and older kir
-- refuses the store instead of misreading it.
ALTER TABLE kir_schema ADD COLUMN min_reader BIGINT NOT NULL DEFAULT 0;
