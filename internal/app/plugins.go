package app

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/floe-io/floe/internal/config"
	"github.com/floe-io/floe/internal/parser"
	"github.com/floe-io/floe/internal/plugin"
)

// loadExternalPlugins loads every plugin file the configuration names — the
// [SERVICE] plugins_file (classic [PLUGINS] Path lines or YAML plugins:),
// a YAML plugins: list or [PLUGINS] section in the main file, and -e on the
// command line — so that their registered names can be used in [OUTPUT]
// sections. Each problem is reported at the line naming the plugin.
func loadExternalPlugins(cfg *config.Config, reg *plugin.Registry) config.ErrorList {
	var errs config.ErrorList
	var paths []config.Prop
	for _, s := range cfg.Plugins {
		for _, p := range s.Props {
			if strings.EqualFold(p.Key, "path") {
				paths = append(paths, p)
			}
		}
	}
	if f, ok := cfg.Service.Get("plugins_file"); ok {
		dir := ""
		if len(cfg.Files) > 0 {
			dir = filepath.Dir(cfg.Files[0])
		}
		file := parser.ResolvePath(f, dir)
		env := func(k string) (string, bool) {
			if v, ok := cfg.Env[k]; ok {
				return v, true
			}
			return os.LookupEnv(k)
		}
		list, err := config.ParsePluginsFile(file, env)
		if err != nil {
			errs = appendConfigErr(errs, err)
		}
		paths = append(paths, list...)
	}
	for _, p := range paths {
		path := resolvePluginPath(p)
		if _, err := reg.LoadExternal(context.Background(), path); err != nil {
			errs = append(errs, &config.Error{File: p.File, Line: p.Line, Key: p.Key, Msg: err.Error()})
		}
	}
	return errs
}

// resolvePluginPath uses a path as given when it exists (dlopen's rule:
// relative to the working directory), else, when relative, next to the
// file that names it.
func resolvePluginPath(p config.Prop) string {
	path := p.Value
	if filepath.IsAbs(path) || p.File == "" || p.File == config.CommandLine {
		return path
	}
	if _, err := os.Stat(path); err == nil || !errors.Is(err, fs.ErrNotExist) {
		return path
	}
	return filepath.Join(filepath.Dir(p.File), path)
}
