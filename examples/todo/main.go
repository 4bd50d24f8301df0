package main

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/uplinkhq/uplink/boot"
	"github.com/uplinkhq/uplink/migrate"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "todo:", err)
		os.Exit(1)
	}
}

func run() error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(envOr("UPLINK_LOG_LEVEL", "info"))); err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(os.Stdout, &slog.HandlerOptions{Level: level}))

	migrations, err := migrate.Load(migrationFS, "migrations")
	if err != nil {
		return err
	}
	t := &todos{log: log}
	app, err := boot.New(boot.Config{
		DataDir:     os.Getenv("UPLINK_DATA_DIR"),
		DatabaseURL: os.Getenv("DATABASE_URL"),
		HTTPAddr:    os.Getenv("UPLINK_HTTP_ADDR"),
		Env:         os.Getenv("UPLINK_ENV"),
		Logger:      log,
		Handler:     t.routes(),
		Migrations:  []migrate.Line{{Name: "todo", Migrations: migrations}},
		Tasks:       tasks(),
	})
	if err != nil {
		return err
	}
	t.app = app
	if err := boot.AddWorker(app, &processWorker{app: app, log: log}); err != nil {
		return err
	}

	// The first signal stops gracefully; a second one exits at once.
	ctx, stop := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-sigs
		log.Info("signal received; stopping")
		stop()
		<-sigs
		log.Warn("second signal; exiting now")
		os.Exit(1)
	}()
	if err := app.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
