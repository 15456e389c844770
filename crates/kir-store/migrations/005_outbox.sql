-- Replicas, version 5: the outbox. Every escalation level that fires with someone to notify gets
-- a row here in the same transaction, owned by the process that fired it; that process marks it
-- done when its deliveries are over. A row still pending after its owner died (kill -9 between
-- firing and sending) is taken over by another process (kir serve's leader), so a page is never
-- lost, and a living owner's rows are never taken, so two processes do not both send it.
CREATE TABLE outbox (
    incident_id BIGINT NOT NULL REFERENCES incidents (id),
    cycle BIGINT NOT NULL,
    round BIGINT NOT NULL,
    level BIGINT NOT NULL,
    -- pending, delivered, failed, skipped (no channel configured), not-sent (paging was off)
    state TEXT NOT NULL,
    owner TEXT NOT NULL,
    claimed_at BIGINT NOT NULL,
    takeovers BIGINT NOT NULL DEFAULT 0,
    done_at BIGINT,
    PRIMARY KEY (incident_id, cycle, round, level)
);
CREATE INDEX outbox_state ON outbox (state);
