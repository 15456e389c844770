-- kir incident store, version 3: drills (kir drill run), and the drill an incident belongs to.
CREATE TABLE drills (
    id {{ID}},
    scenario TEXT NOT NULL,
    recording TEXT NOT NULL,
    who TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    -- Added to every event time of the recording: its first event happens at started_at.
    shift_ms BIGINT NOT NULL,
    finished_at BIGINT,
    -- The run's measures as JSON (kir drill run --format json).
    result TEXT
);
ALTER TABLE incidents ADD COLUMN drill_id BIGINT;
CREATE INDEX incidents_drill ON incidents (drill_id);
