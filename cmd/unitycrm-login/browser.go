package main

import (
	"os/exec"
	"runtime"
)

// openBrowser asks the desktop to open u. It is best-effort: the URL is
// always printed as well.
func openBrowser(u string) error {
	var cmd *exec.Cmd
	switch runtime.GOOS {
	case "darwin":
		cmd = exec.Command("open", u)
	case "windows":
		cmd = exec.Command("rundll32", "url.dll,FileProtocolHandler", u)
	default:
		cmd = exec.Command("xdg-open", u)
	}
	if err := cmd.Start(); err != nil {
		return err
	}

	// Reap the helper without waiting for it.
	go func() { _ = cmd.Wait() }()
	return nil
}
