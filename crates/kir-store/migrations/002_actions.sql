-- kir incident store, version 2: containment actions, with the state before each one for undo.
CREATE TABLE actions (
    id TEXT PRIMARY KEY,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    incident_id BIGINT,
    dry_run BIGINT NOT NULL,
    who TEXT NOT NULL,
    at BIGINT NOT NULL,
    cluster TEXT,
    before_state TEXT NOT NULL,
    changes TEXT NOT NULL,
    undone_at BIGINT,
    undone_by TEXT
);
CREATE INDEX actions_incident ON actions (incident_id);
