package goplugin

import (
	"context"
	"fmt"

	"github.com/floe-io/floe/internal/plugin"
)

func loadSDK(ctx context.Context, path string) (*plugin.Spec, error) {
	return nil, fmt.Errorf("plugin %s: not a .so file", path)
}
