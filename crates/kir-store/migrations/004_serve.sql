-- kir serve, version 4: what the receivers stored, in the order they stored it; what live detection
-- found in it; where detection stands; and the API tokens.
CREATE TABLE stream_events (
    seq {{ID}},
    -- auditID and stage for an audit event; a digest of the text for a Falco alert or a marker.
    event_key TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    received_by TEXT NOT NULL,
    body TEXT NOT NULL
);

CREATE TABLE detections (
    id {{ID}},
    -- A detection's rule and audit IDs; a burst's rule and first audit ID (the burst grows).
    detection_key TEXT NOT NULL UNIQUE,
    rule_id TEXT NOT NULL,
    severity_rank BIGINT NOT NULL,
    event_time BIGINT,
    detected_at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    namespace TEXT,
    body TEXT NOT NULL
);
CREATE INDEX detections_time ON detections (event_time);
CREATE INDEX detections_rule ON detections (rule_id);

CREATE TABLE stream_cursor (
    name TEXT PRIMARY KEY,
    seq BIGINT NOT NULL
);

CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    revoked_at BIGINT,
    revoked_by TEXT
);
CREATE UNIQUE INDEX api_tokens_live_name ON api_tokens (name) WHERE revoked_at IS NULL;
