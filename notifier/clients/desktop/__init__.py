"""``notifier-desktop``: a person's notifications on their desktop, with a tray icon.

It runs in the person's graphical session, on the session bus, with
dbus-python and no GTK. Notifications come from a notifier service's live
stream (:mod:`.stream`), shown through ``org.freedesktop.Notifications``
(:mod:`.notify`); the tray icon is a StatusNotifierItem with a dbusmenu
(:mod:`.tray`); scripts drive it through ``org.fedoraproject.notifier.Desktop``
(:mod:`.service`). ``notifier-desktop --help`` explains the two modes.
"""
