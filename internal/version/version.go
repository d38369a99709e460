// Package version holds the plugin's release version. The VERSION file
// beside this one is the single source: the build, `vault plugin register
// -version` and RunningVersion all read it.
package version

import (
	_ "embed"
	"strings"
)

//go:embed VERSION
var raw string

// Version is the release, exactly "vX.Y.Z".
var Version = strings.TrimSpace(raw)
