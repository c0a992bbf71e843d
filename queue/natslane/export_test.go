package natslane

import "github.com/graylane/graylane/registry"

// Crash makes Run return as if the process had died: nothing more is
// acknowledged and the consumer stays registered.
func (c *Consumer) Crash() { c.crashed.Store(true) }

// Registration returns the consumer's registration, once it has one.
func (c *Consumer) Registration() registry.Registration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reg
}
