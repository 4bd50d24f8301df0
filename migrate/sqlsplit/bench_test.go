package sqlsplit

import (
	"strings"
	"testing"

	"github.com/uplinkhq/uplink/migrate/internal/testcorpus"
)

// BenchmarkSplit splits every .sql file of the acceptance corpus, one by one,
// as the migrator does with a directory of migrations.
func BenchmarkSplit(b *testing.B) {
	files := testcorpus.Files(b, ".sql")
	size := 0
	for _, f := range files {
		size += len(f)
	}
	b.SetBytes(int64(size))
	b.ReportAllocs()
	for b.Loop() {
		for _, f := range files {
			if _, err := Split(f); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkSplitLarge splits one large schema dump: many tables, indexes,
// comments and functions.
func BenchmarkSplitLarge(b *testing.B) {
	const unit = `-- Table for things.
CREATE TABLE IF NOT EXISTS "thing_%" (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name text NOT NULL DEFAULT 'unnamed; really',
    data jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ON thing_x ((data #>> '{a,b}'));
/* A function with a body. */
CREATE OR REPLACE FUNCTION touch_x() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    NEW.created_at := now(); -- keep it fresh
    RETURN NEW;
END;
$fn$;
INSERT INTO thing_x (name, data) VALUES (E'it''s\n', '{"k": "v"}'), ('b', '{}');
`
	src := strings.Repeat(unit, 1000)
	b.SetBytes(int64(len(src)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Split(src); err != nil {
			b.Fatal(err)
		}
	}
}
