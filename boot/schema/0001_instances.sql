-- Uplink's own schema: which processes booted against this database, with
-- what version and mode, and when they were last ready or stopped. The
-- history table beside it (uplink.schema_history) is the migrator's own.
CREATE TABLE IF NOT EXISTS uplink.instances (
    id          text PRIMARY KEY,          -- host/pid/start time: unique per process
    hostname    text        NOT NULL,
    pid         integer     NOT NULL,
    version     text        NOT NULL,
    mode        text        NOT NULL,
    started_at  timestamptz NOT NULL,
    ready_at    timestamptz,
    stopped_at  timestamptz
);
CREATE INDEX IF NOT EXISTS instances_started_at ON uplink.instances (started_at DESC);
