-- kir incident store, version 1. One file for SQLite and PostgreSQL: the ID placeholder becomes each
-- backend's auto-increment key and the APPEND_ONLY placeholder its triggers that refuse to rewrite history.
CREATE TABLE incidents (
    id {{ID}},
    title TEXT NOT NULL,
    incident_type TEXT NOT NULL,
    severity TEXT NOT NULL,
    state TEXT NOT NULL,
    owner_role TEXT,
    owner_person TEXT,
    group_key TEXT,
    source TEXT NOT NULL,
    reported_by TEXT NOT NULL,
    description TEXT,
    plan_name TEXT NOT NULL,
    plan_digest TEXT NOT NULL,
    policy_id TEXT,
    policy_json TEXT,
    cycle BIGINT NOT NULL DEFAULT 0,
    cycle_started_at BIGINT NOT NULL,
    first_event_at BIGINT,
    last_event_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    acknowledged_at BIGINT,
    contained_at BIGINT,
    resolved_at BIGINT,
    closed_at BIGINT,
    close_reason TEXT,
    finding_count BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX incidents_group ON incidents (group_key, state);
CREATE INDEX incidents_state ON incidents (state);

CREATE TABLE findings (
    id {{ID}},
    incident_id BIGINT NOT NULL REFERENCES incidents (id),
    fingerprint TEXT NOT NULL UNIQUE,
    rule_id TEXT NOT NULL,
    title TEXT NOT NULL,
    severity TEXT NOT NULL,
    routed_severity TEXT NOT NULL,
    routed_type TEXT NOT NULL,
    event_time BIGINT,
    discovered_at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    namespace TEXT,
    resource TEXT,
    name TEXT,
    tactics TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX findings_incident ON findings (incident_id);

CREATE TABLE timeline (
    id {{ID}},
    incident_id BIGINT NOT NULL REFERENCES incidents (id),
    at BIGINT NOT NULL,
    who TEXT NOT NULL,
    kind TEXT NOT NULL,
    message TEXT NOT NULL,
    data TEXT
);
CREATE INDEX timeline_incident ON timeline (incident_id, at);

CREATE TABLE escalations (
    incident_id BIGINT NOT NULL REFERENCES incidents (id),
    cycle BIGINT NOT NULL,
    round BIGINT NOT NULL,
    level BIGINT NOT NULL,
    fired_at BIGINT NOT NULL,
    manual BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (incident_id, cycle, round, level)
);

CREATE TABLE iocs (
    incident_id BIGINT NOT NULL REFERENCES incidents (id),
    kind TEXT NOT NULL,
    value TEXT NOT NULL,
    added_at BIGINT NOT NULL,
    added_by TEXT NOT NULL,
    PRIMARY KEY (incident_id, kind, value)
);

{{APPEND_ONLY}}
