package lanelog_test

import (
	"context"
	"log/slog"
	"os"

	"github.com/graylane/graylane/lanelog"
	"github.com/graylane/graylane/receipt"
	"github.com/graylane/graylane/tag"
)

// Every record logged with a request's context says which lane the
// request is in, and how this server's lane was reached.
func Example() {
	logger := slog.New(lanelog.NewHandler(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{} // for a stable output
			}
			return a
		},
	})))

	// What graylane's middleware puts in the context of a request.
	ctx := tag.NewContext(context.Background(), tag.MustParse("gray"))
	ctx = receipt.NewContext(ctx, receipt.New(receipt.Hop{Service: "ratings", Lane: "prod", Fallback: "noinstances"}, false))

	logger.InfoContext(ctx, "rating served", "product", 0)
	logger.Info("no context, no lane")
	// Output:
	// level=INFO msg="rating served" product=0 graylane.tag=gray graylane.lane=prod graylane.fallback=noinstances
	// level=INFO msg="no context, no lane"
}
