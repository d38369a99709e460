package main

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/hashicorp/vault/api"
)

// resultFields are the fields of the creds/<name> answer shown, in order.
// The answer holds no secret; showing only these keeps it that way.
var resultFields = []string{
	"name", "scopes", "api_domain", "accounts_server", "created_at",
}

// printResult shows the stored credential on stdout.
func (l *login) printResult(s *api.Secret) {
	path := l.o.mount + "/creds/" + l.o.name
	fmt.Fprintf(l.stdout, "Success! Stored credential %q at %s.\n\n",
		l.o.name, path)

	tw := tabwriter.NewWriter(l.stdout, 0, 4, 4, ' ', 0)
	fmt.Fprintln(tw, "Key\tValue")
	fmt.Fprintln(tw, "---\t-----")
	for _, k := range resultFields {
		if v, ok := s.Data[k]; ok && v != nil {
			fmt.Fprintf(tw, "%s\t%s\n", k, fieldString(v))
		}
	}
	tw.Flush()

	fmt.Fprintf(l.stdout, "\nApplications get access tokens with: "+
		"vault read %s\n", path)
}

// fieldString renders a JSON value as the vault CLI would: lists joined
// by commas.
func fieldString(v interface{}) string {
	list, ok := v.([]interface{})
	if !ok {
		return fmt.Sprint(v)
	}
	parts := make([]string, len(list))
	for i, x := range list {
		parts[i] = fmt.Sprint(x)
	}
	return strings.Join(parts, ",")
}

// printWarnings shows Vault's warnings, which never hold a secret.
func (l *login) printWarnings(warnings []string) {
	for _, w := range warnings {
		fmt.Fprintf(l.stderr, "WARNING! %s\n\n", w)
	}
}
