package backend

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

const (
	walKindRefreshToken = "refresh_token"

	// walRollbackMinAge leaves a write in flight time to finish before its
	// refresh token is taken for orphaned.
	walRollbackMinAge = 2 * time.Minute
)

// walRefreshToken records a refresh token obtained but not yet stored.
type walRefreshToken struct {
	Name           string    `json:"name"`
	RefreshToken   string    `json:"refresh_token"`
	AccountsServer string    `json:"accounts_server"`
	CreatedAt      time.Time `json:"created_at"`
}

// walRollback revokes a refresh token that was obtained but never stored,
// so none is orphaned upstream (the provider keeps only 20 per user).
func (b *backend) walRollback(ctx context.Context, req *logical.Request, kind string, data interface{}) error {
	if kind != walKindRefreshToken {
		return fmt.Errorf("unknown write ahead log kind %q", kind)
	}
	// The entry comes back as decoded JSON; take it through JSON again.
	var entry walRefreshToken
	raw, err := json.Marshal(data)
	if err != nil {
		return fmt.Errorf("encode write ahead log entry: %w", err)
	}
	if err := json.Unmarshal(raw, &entry); err != nil {
		return fmt.Errorf("decode write ahead log entry: %w", err)
	}

	lock := b.credLock(entry.Name)
	lock.Lock()
	defer lock.Unlock()

	// The write may have stored it after all (and only failed to delete
	// the entry): then it is in use and must stay.
	cred, err := getCred(ctx, req.Storage, entry.Name)
	if err != nil {
		return err
	}
	if cred != nil && cred.RefreshToken == entry.RefreshToken {
		return nil
	}

	client, cfg, err := b.accountsClient(ctx, req.Storage)
	if err != nil {
		return err
	}
	if err := b.revokeUpstream(ctx, client, entry.RefreshToken, cfg, entry.AccountsServer); err != nil {
		b.Logger().Warn("revoke orphaned refresh token", "credential", entry.Name, "error", err)
		return err
	}
	b.Logger().Info("revoked orphaned refresh token", "credential", entry.Name)
	return nil
}
