"""Media: RTP (RFC 3550/4571), GB-style MPEG-PS, H.264 access units, PS-over-RTP packetizing, and the media
backends behind one interface (``backend.MediaBackend``): the embedded receiver (``receiver``) first.

How the INVITE layer is meant to drive it (one live session)::

    ssrc = allocator.allocate()                                   # gb28181.sdp.SsrcAllocator, y=
    port, handle = await backend.open_receiver(ReceiverSpec(transport, int(ssrc), output, no_media_timeout),
                                               on_no_media=lambda h, stats: ...BYE + close...)
    offer = sdp.build_offer(sdp.Offer(own_id, advertise_ip, port, ssrc, kind, transport, ...))
    ... INVITE with offer.to_bytes(); 200 OK ...
    view = sdp.read_answer(offer, sdp.parse(body), transport, fallback_address=device_ip)
    backend.expect_ssrc(handle, view.ssrc)                        # the answer's y= wins
    if view.connect_to: await backend.connect(handle, *view.connect_to)   # tcp-active
    ... ACK; media flows; stats(handle) for the session table; forward(handle, ForwardSpec(...)) for relays ...
    final = await backend.close(handle); allocator.release(ssrc)
"""
