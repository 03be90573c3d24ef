"""Media: RTP (RFC 3550/4571), GB-style MPEG-PS, H.264 access units, PS-over-RTP packetizing, and the media
backends behind one interface (``backend.MediaBackend``): the embedded receiver (``receiver``) first."""
