package cli

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/fanouthq/fanout/auth"
)

const keysUsage = `usage:
  fanout keys new  [--tenant T] [--name N] [--admin]   make a key and print its config entry
  fanout keys hash                                     print the SHA-256 of a key read from standard input
  fanout keys create --name N [--expires-at T]         create a self-service key (admin API)
  fanout keys list [--tenant T]                        list self-service keys (admin API)
  fanout keys revoke ID                                revoke a self-service key (admin API)

A key is printed once: hand it to the client (or keep it in a secret
manager). The config stores only its SHA-256, so a leaked config leaks no
key. With --admin the key is a tenant admin token (admin_token_sha256).
create, list and revoke manage keys kept in the store instead, through the
admin API at $FANOUT_ADMIN_URL with $FANOUT_ADMIN_TOKEN (a tenant admin
token manages its own tenant's).

` + exitCodes

func runKeys(ctx context.Context, args []string, env Env) error {
	if len(args) == 0 {
		fmt.Fprint(env.Stderr, keysUsage)
		return exitError{2}
	}
	switch args[0] {
	case "new":
		return runKeysNew(args[1:], env)
	case "hash":
		return runKeysHash(args[1:], env)
	case "create":
		return runKeysCreate(ctx, args[1:], env)
	case "list":
		return runKeysList(ctx, args[1:], env)
	case "revoke":
		return runKeysRevoke(ctx, args[1:], env)
	case "help", "-h", "--help":
		fmt.Fprint(env.Stdout, keysUsage)
		return errHelp
	}
	fmt.Fprintf(env.Stderr, "fanout keys: unknown command %q\n\n%s", args[0], keysUsage)
	return exitError{2}
}

func runKeysNew(args []string, env Env) error {
	fs := newFlagSet("keys new", `usage: fanout keys new [--tenant T] [--name N] [--admin]

Makes an API key (or with --admin a tenant admin token), prints it once and
prints the config entry that holds its SHA-256.

`+exitCodes, env)
	tenant := fs.String("tenant", "default", "the tenant the key belongs to")
	name := fs.String("name", "", "the key's name, shown in logs (default key-<first hash digits>)")
	admin := fs.Bool("admin", false, "make a tenant admin token instead of an API key")
	pos, err := fs.parse(args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return fs.usageError()
	}
	if !auth.ValidTenant(*tenant) {
		return fmt.Errorf("--tenant %q: use 1 to 64 letters, digits, '_', '-' and '.'", *tenant)
	}
	key, hash := auth.NewKey()
	if *name == "" {
		*name = "key-" + hash[:8]
	}
	if !auth.ValidTenant(*name) {
		return fmt.Errorf("--name %q: use 1 to 64 letters, digits, '_', '-' and '.'", *name)
	}
	w := env.Stdout
	if *admin {
		fmt.Fprintf(w, "admin token: %s\n\n", key)
		fmt.Fprintf(w, "# Add to the config (it keeps only the hash); the token is not shown again.\n")
		fmt.Fprintf(w, "tenants:\n  %s:\n    admin_token_sha256: %q\n", *tenant, hash)
		return nil
	}
	fmt.Fprintf(w, "key: %s\n\n", key)
	fmt.Fprintf(w, "# Add to the config (it keeps only the hash); the key is not shown again.\n")
	fmt.Fprintf(w, "tenants:\n  %s:\n    keys:\n      - {name: %s, sha256: %q}\n", *tenant, *name, hash)
	return nil
}

func runKeysHash(args []string, env Env) error {
	fs := newFlagSet("keys hash", `usage: fanout keys hash < keyfile

Prints the SHA-256 of the key read from standard input (the first line),
for the config's sha256 or admin_token_sha256. The key is not taken as an
argument: it would be seen in ps and in the shell's history.

`+exitCodes, env)
	if pos, err := fs.parse(args); err != nil {
		return err
	} else if len(pos) > 0 {
		return fs.usageError()
	}
	line, err := bufio.NewReader(io.LimitReader(env.Stdin, auth.MaxCredentialLen+2)).ReadString('\n')
	if err != nil && err != io.EOF {
		return fmt.Errorf("read the key: %w", err)
	}
	key := strings.TrimRight(line, "\r\n")
	if key == "" {
		return fmt.Errorf("no key on standard input")
	}
	if strings.ContainsAny(key, " \t") {
		return fmt.Errorf("the key holds a space or tab; keys are single tokens")
	}
	fmt.Fprintln(env.Stdout, auth.HashKey(key))
	return nil
}
