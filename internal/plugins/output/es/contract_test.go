package es

import (
	"testing"

	"github.com/floe-io/floe/internal/plugin/outputtest"
)

func TestContractES(t *testing.T) {
	outputtest.Run(t, Spec(), func(t *testing.T) outputtest.Sink { return newBulkSink(t) }, outputtest.Options{})
}

func TestContractOpenSearch(t *testing.T) {
	outputtest.Run(t, OpenSearchSpec(), func(t *testing.T) outputtest.Sink { return newBulkSink(t) }, outputtest.Options{})
}
