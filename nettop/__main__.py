from nettop.cli import main

raise SystemExit(main())
