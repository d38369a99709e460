//go:build e2e

package e2e

import (
	"regexp"
	"testing"

	"github.com/hashicorp/vault/api"

	"github.com/unitycrm/vault-plugin-secrets-unitycrm/internal/version"
)

// TestPluginVersion checks what `vault plugin info` and `vault secrets list
// -detailed` show: the registered version, and the plugin reporting the
// same version while it runs.
func TestPluginVersion(t *testing.T) {
	showLogOnFailure(t, env.vault)
	c := env.client
	ctx := testCtx(t)

	if !regexp.MustCompile(`^v[0-9]+\.[0-9]+\.[0-9]+$`).MatchString(version.Version) {
		t.Errorf("internal/version/VERSION is %q, want vX.Y.Z", version.Version)
	}

	p, err := c.Sys().GetPluginWithContext(ctx, &api.GetPluginInput{
		Name:    pluginName,
		Type:    api.PluginTypeSecrets,
		Version: version.Version,
	})
	if err != nil {
		t.Fatalf("read sys/plugins/catalog/secret/%s: %v", pluginName, err)
	}
	if p.Version != version.Version || p.SHA256 != env.plugin.SHA256 || p.Builtin {
		t.Errorf("catalog entry: version %q sha256 %q builtin %v; want %q, %q, false",
			p.Version, p.SHA256, p.Builtin, version.Version, env.plugin.SHA256)
	}

	m, err := c.Sys().GetMountWithContext(ctx, mountPath)
	if err != nil {
		t.Fatalf("read sys/mounts/%s: %v", mountPath, err)
	}
	if m.Type != pluginName {
		t.Errorf("mount type = %q, want %q", m.Type, pluginName)
	}
	if m.PluginVersion != version.Version {
		t.Errorf("mount plugin_version = %q, want %q", m.PluginVersion, version.Version)
	}
	if m.RunningVersion != version.Version {
		t.Errorf("mount running_plugin_version = %q, want %q", m.RunningVersion, version.Version)
	}
	if m.RunningSha256 != env.plugin.SHA256 {
		t.Errorf("mount running_sha256 = %q, want %q", m.RunningSha256, env.plugin.SHA256)
	}
}
