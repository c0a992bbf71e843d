package tag_test

import (
	"context"
	"fmt"

	"github.com/graylane/graylane/tag"
)

func Example() {
	t, err := tag.Parse("gray")
	if err != nil {
		panic(err)
	}
	ctx := tag.NewContext(context.Background(), t)

	if got, ok := tag.FromContext(ctx); ok {
		fmt.Println("lane:", got)
	}
	// Output: lane: gray
}

func ExampleParse() {
	_, err := tag.Parse("gray lane")
	fmt.Println(err)
	// Output: invalid tag: "gray lane" has ' ' at offset 4; allowed are letters, digits, '.', '_' and '-'
}
