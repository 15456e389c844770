-- Multi-cluster, version 7: the cluster each stored event, detection and finding came from
-- (NULL where the input named none), the cluster an API token sends for, and the clusters an
-- incident spans. Only adds: every older kir still reads the store.
ALTER TABLE stream_events ADD COLUMN cluster TEXT;
ALTER TABLE detections ADD COLUMN cluster TEXT;
ALTER TABLE findings ADD COLUMN cluster TEXT;
ALTER TABLE api_tokens ADD COLUMN cluster TEXT;
-- The clusters of an incident's findings, sorted, comma-separated (cluster names hold no comma).
ALTER TABLE incidents ADD COLUMN clusters TEXT;
CREATE INDEX detections_cluster ON detections (cluster);
CREATE INDEX findings_cluster ON findings (cluster);
CREATE INDEX iocs_value ON iocs (kind, value);
-- Groups that joined an incident of another group (linked by an image): their later findings
-- join it too, instead of opening an incident of their own.
CREATE TABLE incident_groups (
    group_key TEXT NOT NULL,
    incident_id BIGINT NOT NULL REFERENCES incidents (id),
    linked_at BIGINT NOT NULL,
    PRIMARY KEY (group_key, incident_id)
);
