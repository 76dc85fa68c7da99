from hcnode.cli import main

raise SystemExit(main())
