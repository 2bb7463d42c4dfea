package stdlib_test

import (
	"testing"

	"github.com/star-deploy/star-deploy/internal/startest"
)

func TestStarlark(t *testing.T) { startest.Run(t, "testdata/*_test.star") }
