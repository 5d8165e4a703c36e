"""Payment gateways: the interface DCP needs, and its Moyasar implementation."""
