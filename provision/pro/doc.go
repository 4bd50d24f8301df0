// Package pro provides the PostgreSQL named by DATABASE_URL ("pro mode").
// It never starts, stops or falls back to a local server: if the server is
// not there, it waits and says so.
//
//	New(cfg)           parse DATABASE_URL and the CA file at once;
//	   │               malformed → *status.ActionError, no waiting
//	   ▼
//	Provision(ctx) ──► connect (TLS as sslmode says) ──► SHOW server_version_num ≥ 130000 ──► DSN
//	   ▲                    │
//	   │  may fix itself:   │  back-off 1 s, 2 s, 4 s … 30 s, each cut by
//	   └────────────────────┤  up to half at random; Status shows attempts,
//	                        │  last error, next retry
//	                        └─► a person must act: *status.ActionError with a Hint
//
// # Which failures wait and which need a person
//
// The rule: what a running system can cure (a server starting, a network
// coming up, a DNS record being created) is retried for as long as the
// caller's context lasts, so that an outage never stops the process.
// What only a change of configuration can cure ends Provision with a
// *status.ActionError, and boot goes to its error phase.
//
//	failure                                               outcome
//	--------------------------------------------------    ------------------------------
//	DATABASE_URL empty, unparseable, not postgres://      ActionError from New
//	CA file unreadable or without a PEM certificate       ActionError from New
//	CA file with sslmode disable, allow or prefer         ActionError from New (ignored CA)
//	connection refused, reset, unreachable network        retry
//	no answer within ConnectTimeout                       retry
//	host name does not resolve (temporary or NXDOMAIN)    retry, with a hint to check the host
//	57P03 starting up, shutting down, in recovery         retry
//	53300 too many connections (server, role, database)   retry
//	any other server error or unknown error               retry, the error shown in Status
//	28P01 wrong password                                  ActionError
//	28000 and other class 28 (pg_hba.conf, no such role)  ActionError
//	3D000 database does not exist                         ActionError
//	42501 no CONNECT privilege on the database            ActionError
//	class 22 and 42: a bad parameter in DATABASE_URL      ActionError
//	server refuses TLS while sslmode requires it          ActionError
//	certificate untrusted, for another host, or invalid   ActionError
//	server older than PostgreSQL 13                       ActionError
//
// An unknown host is retried rather than refused: in Kubernetes or Compose
// a service's name often resolves only once the database is up, and a
// restart would be needed to leave the error phase. The hint stays in
// Status while it lasts, so a typo does not go unnoticed. A missing
// database, by contrast, is refused even though something might create it
// later, because nothing in Uplink will.
//
// # TLS
//
// sslmode means what it means to libpq (default prefer); verify-full
// checks the chain and the host name, verify-ca the chain only. CAFile
// (UPLINK_DATABASE_CA_FILE) becomes sslrootcert in the returned DSN, so
// every later connection verifies the same way. A CA file with a mode that
// never verifies is refused rather than quietly upgraded, so that
// DATABASE_URL means the same to Uplink as to psql.
//
// # Secrets
//
// Every error text that reaches Status, the log or an ActionError passes
// through provision.Redact and is scrubbed of the password's literal text,
// whichever form the URL had, even a malformed one. The DSN itself prints
// redacted; only DSN.Secret gives the password.
//
// # Logging
//
// One warning per distinct problem, a debug line for each further retry
// (attempt, retry_in, next_retry), an error line for what needs a person
// and an info line on connecting. Attribute keys are constant.
package pro
