package prefork

// openBackend opens Pump unless name is BackendPortable.
func openBackend(name string) (Backend, string, error) {
	if name == BackendPortable {
		return openPortableBackend()
	}
	b, err := OpenPump()
	if err != nil {
		return nil, "", err
	}
	return b, BackendPump, nil
}
