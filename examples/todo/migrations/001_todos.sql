-- The example app's one table. A todo is "processed" by its job, which
-- takes work_ms milliseconds: long enough, when asked, to watch a
-- graceful stop wait for it.
CREATE TABLE todos (
    id           bigserial   PRIMARY KEY,
    title        text        NOT NULL CHECK (title <> ''),
    work_ms      integer     NOT NULL DEFAULT 0 CHECK (work_ms >= 0),
    created_at   timestamptz NOT NULL DEFAULT now(),
    processed_at timestamptz
);
