package receipt_test

import (
	"context"
	"fmt"

	"github.com/graylane/graylane/receipt"
)

// A server records its hop; graylane's clients add the hops of the
// services they call; the header carries them back.
func Example() {
	self := receipt.Self{Service: "productpage", Instance: "productpage-v1-0", Lane: "prod"}
	rc := receipt.New(self.Hop("gray", "noinstances", ""), true)
	ctx := receipt.NewContext(context.Background(), rc)

	receipt.FromContext(ctx).Add(receipt.Hop{Service: "reviews", Instance: "reviews-v2-0", Lane: "gray", Tag: "gray", From: "productpage"})
	header := rc.String()
	fmt.Println(header)

	hops, err := receipt.Parse(header)
	if err != nil {
		panic(err)
	}
	for _, h := range hops {
		fmt.Printf("%s served by %s in lane %s\n", h.Service, h.Instance, h.Lane)
	}
	// Output:
	// svc=productpage;inst=productpage-v1-0;lane=prod;tag=gray;fallback=noinstances, svc=reviews;inst=reviews-v2-0;lane=gray;tag=gray;from=productpage
	// productpage served by productpage-v1-0 in lane prod
	// reviews served by reviews-v2-0 in lane gray
}
